//! Chapter 7 end to end: the book's data numbers, the loss that ignores -100, a tiny model that
//! overfits a handful of instructions and then answers them, saved responses that round-trip,
//! and the judge against a stand-in chat server on this machine.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;

use llm_from_scratch::ch02::DataLoader;
use llm_from_scratch::ch04::{GptConfig, GptModel};
use llm_from_scratch::ch05::{calc_loss_loader, cross_entropy, train_steps, AdamW, NextTokenTask, TrainSettings, TrainState};
use llm_from_scratch::ch07::*;
use llm_from_scratch::{rng_lock, set_seed, Error};
use tch::{nn, Device, Tensor};

/// Four short instructions, one with an input.
fn handful() -> Vec<InstructionEntry> {
    vec![
        InstructionEntry::new("What is the capital of France?", "", "The capital of France is Paris."),
        InstructionEntry::new("Convert the active sentence to passive.", "The chef cooks the meal.", "The meal is cooked by the chef."),
        InstructionEntry::new("Name a primary color.", "", "Red is a primary color."),
        InstructionEntry::new("What is the opposite of hot?", "", "The opposite of hot is cold."),
    ]
}

#[test]
fn the_books_data_split_and_prompts() {
    let data = instruction_data(&common::store()).unwrap();
    assert_eq!(data.len(), 1100, "entries in instruction-data.json");
    let (train, test, val) = train_test_val_split(&data);
    assert_eq!((train.len(), test.len(), val.len()), (935, 110, 55), "book 7.2");
    assert_eq!((&train[0], &test[0], &val[0]), (&data[0], &data[935], &data[1045]), "no shuffling");
    // The book prints data[50] (with an input) and data[999] (without one).
    assert_eq!(
        format_example(&data[50]),
        "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n\
         ### Instruction:\nIdentify the correct spelling of the following word.\n\n### Input:\nOcassion\n\n\
         ### Response:\nThe correct spelling is 'Occasion.'"
    );
    assert_eq!(
        format_example(&data[999]),
        "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n\
         ### Instruction:\nWhat is an antonym of 'complicated'?\n\n### Response:\nAn antonym of 'complicated' is 'simple'."
    );
    // The loaders: validation batches in order, each padded to its longest example + 1.
    let (train_loader, val_loader, test_loader) =
        create_instruction_loaders(&train, &val, &test, common::gpt2(), 8, Some(1024), 123).unwrap();
    assert_eq!((train_loader.len(), val_loader.len(), test_loader.len()), (116, 7, 14), "935 / 8 dropping the last; 55 and 110 keeping it");
    let (inputs, targets) = val_loader.iter().next().unwrap();
    let longest = (0..8).map(|i| val_loader.dataset.get(i).len()).max().unwrap();
    assert_eq!(inputs.size(), [8, longest as i64], "longest + 1 (<|endoftext|>) - 1 (shift)");
    let kept = targets.ne(-100).sum(tch::Kind::Int64).int64_value(&[]);
    let tokens: usize = (0..8).map(|i| val_loader.dataset.get(i).len()).sum();
    assert_eq!(kept as usize, tokens, "each row keeps its n - 1 shifted tokens + one <|endoftext|> target");
    assert!(train_loader.dataset.max_length() < 1024, "no training example needs cutting at 1024");
}

#[test]
fn loss_ignores_minus_100_as_computed_by_hand() {
    // Book 7.3: two tokens with logits [-1, 1] and [-0.5, 1.5], targets 0 and 1. By hand, the
    // cross-entropy of each is log(1 + e^(other - target logit)): log(1 + e^2) = 2.126928 and
    // log(1 + e^-2) = 0.126928, mean 1.126928 (the book prints 1.1269).
    let logits = Tensor::from_slice(&[-1.0f32, 1.0, -0.5, 1.5]).view([1, 2, 2]);
    let by_hand = ((1.0 + 2f64.exp()).ln() + (1.0 + (-2f64).exp()).ln()) / 2.0;
    let loss = cross_entropy(&logits, &Tensor::from_slice(&[0i64, 1]).view([1, 2])).double_value(&[]);
    assert!((loss - by_hand).abs() < 1e-6 && (loss - 1.1269).abs() < 1e-4, "two tokens: {loss} vs {by_hand}");
    // A third token [-0.5, 1.5] with target 1 enters the mean: (2.126928 + 2 x 0.126928) / 3.
    let logits3 = Tensor::from_slice(&[-1.0f32, 1.0, -0.5, 1.5, -0.5, 1.5]).view([1, 3, 2]);
    let three = cross_entropy(&logits3, &Tensor::from_slice(&[0i64, 1, 1]).view([1, 3])).double_value(&[]);
    let by_hand3 = ((1.0 + 2f64.exp()).ln() + 2.0 * (1.0 + (-2f64).exp()).ln()) / 3.0;
    assert!((three - by_hand3).abs() < 1e-6 && (three - 0.7936).abs() < 1e-4, "three tokens: {three}");
    // With the third target -100 it is ignored: the two-token loss again.
    let ignored = cross_entropy(&logits3, &Tensor::from_slice(&[0i64, 1, IGNORE_INDEX]).view([1, 3])).double_value(&[]);
    assert!((ignored - by_hand).abs() < 1e-6, "-100 ignored: {ignored} vs {by_hand}");
}

/// The loss threshold of the overfitting test. An untrained model scores about ln(50257) = 10.8.
/// The loss averages over every target of an example (~65 GPT-2 tokens: the shared preamble,
/// instruction, input, response and the final <|endoftext|>). The first instruction token after
/// "### Instruction:\n" cannot be predicted better than 1 in 4 (ln 4 = 1.39 spread over ~65
/// targets, a floor of about 0.02); below 0.15 the model gives the other targets a
/// geometric-mean probability above 0.87, i.e. it has memorised the examples, which greedy
/// decoding then reproduces (checked below, not assumed).
const OVERFIT_LOSS: f64 = 0.15;

#[test]
fn tiny_model_overfits_a_handful_of_instructions_and_answers_one() {
    let tokenizer = common::gpt2();
    let data = handful();
    // GPT-2's vocabulary, 2 layers of width 32, no dropout: 3.3M parameters, ~0.15 s a step here.
    let cfg = GptConfig { emb_dim: 32, n_heads: 2, context_length: 96, drop_rate: 0.0, ..GptConfig::tiny() };
    let _rng = rng_lock();
    set_seed(123);
    let vs = nn::VarStore::new(Device::Cpu);
    let model = GptModel::new(&vs.root(), &cfg);
    let dataset = InstructionDataset::new(&data, tokenizer).unwrap().with_allowed_max_length(Some(96));
    let train_loader = DataLoader::new(dataset.clone(), 4, true, true, 123).unwrap();
    let val_loader = DataLoader::new(dataset, 4, false, false, 123).unwrap();
    let initial = calc_loss_loader(&train_loader, &model, Device::Cpu, None);
    let initial_response = response_loss(&model, tokenizer, &data, 4, Some(96), Device::Cpu).unwrap();
    assert!((initial - 10.8).abs() < 0.6 && initial_response > 10.0, "untrained: {initial}, responses {initial_response}");

    // Chapter 5's loop, unchanged: 30 epochs of one batch, a high learning rate for a quick run.
    let mut optimizer = AdamW::new(&vs, 2e-2, 0.1);
    let settings = TrainSettings { sample_tokens: 1, ..TrainSettings::book(30, 10, 1, &format_input(&data[0])) };
    let mut state = TrainState::default();
    let task = NextTokenTask::new(&model, tokenizer, Device::Cpu, cfg.context_length);
    train_steps(&task, &train_loader, &val_loader, &mut optimizer, &settings, &mut state, None, &mut |_| {})
        .unwrap();
    assert_eq!(state.steps_done, 30);
    let trained = calc_loss_loader(&train_loader, &model, Device::Cpu, None);
    assert!(trained < OVERFIT_LOSS, "loss after 30 steps {trained:.4} (from {initial:.3}); history {:?}", state.history.train_losses);
    let trained_response = response_loss(&model, tokenizer, &data, 4, Some(96), Device::Cpu).unwrap();
    assert!(trained_response < trained, "responses only ({trained_response:.4}) exclude the unpredictable instruction token");

    // It answers the instruction with an input word for word, and stops at <|endoftext|>.
    let answer = generate_response(&model, tokenizer, &data[1], 30, cfg.context_length, Device::Cpu).unwrap();
    assert_eq!(answer, data[1].output, "the memorised response");
    let answered = generate_responses(&model, tokenizer, &data, 30, cfg.context_length, Device::Cpu, &mut |_| {}).unwrap();
    let rouge = mean_rouge_l(&answered).unwrap();
    assert!(rouge > 0.9, "ROUGE-L against the references {rouge}: {answered:#?}");
}

#[test]
fn saved_responses_round_trip() {
    let mut entries = handful();
    entries[0].model_response = Some("Paris is the capital of France.\n\"quoted\" and ünïcode".into());
    entries[2].model_response = Some(String::new());
    let dir = std::env::temp_dir().join(format!("llm-fs-ch07-json-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(RESPONSES_FILE);
    save_responses(&path, &entries).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("[\n    {\n        \"instruction\": "), "indent 4 like json.dump(indent=4):\n{text}");
    assert_eq!(text.matches("\"model_response\"").count(), 2, "only entries with a response have the field");
    assert_eq!(load_instruction_data(&path).unwrap(), entries, "round trip");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A stand-in chat server on 127.0.0.1: answers each request with the next of `replies`
/// (status, body) and sends each request's (path, JSON body) back through the channel.
fn serve(replies: Vec<(u16, String)>) -> (String, mpsc::Receiver<(String, serde_json::Value)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for (status, body) in replies {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        length = v.trim().parse().unwrap();
                    }
                }
            }
            let mut buf = vec![0u8; length];
            reader.read_exact(&mut buf).unwrap();
            let path = request_line.split_whitespace().nth(1).unwrap_or("").to_string();
            tx.send((path, serde_json::from_slice(&buf).unwrap())).unwrap();
            let mut stream = reader.into_inner();
            write!(stream, "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
        }
    });
    (format!("http://{addr}"), rx)
}

fn with_responses() -> Vec<InstructionEntry> {
    handful()
        .into_iter()
        .take(2)
        .map(|e| InstructionEntry { model_response: Some(format!("{} Maybe.", e.output)), ..e })
        .collect()
}

#[test]
fn judge_scores_through_ollamas_chat_api() {
    // Ollama streams one JSON object per line; the second reply has no score at all.
    let lines = |parts: &[&str]| {
        parts.iter().map(|p| serde_json::json!({"message": {"role": "assistant", "content": p}, "done": false}).to_string() + "\n").collect::<String>()
    };
    let (base, requests) = serve(vec![(200, lines(&["8", "5"])), (200, lines(&["I would rather not."]))]);
    let judge = Judge::ollama(&format!("{base}/api/chat"), "llama3");
    let entries = with_responses();
    let mut seen = Vec::new();
    let scores = judge.generate_model_scores(&entries, &mut |i, s| seen.push((i, s))).unwrap();
    assert_eq!(scores, vec![Some(85), None], "85 from the streamed pieces; no integer, no score");
    assert_eq!(seen, vec![(0, Some(85)), (1, None)]);
    assert_eq!(average_score(&scores), Some(85.0));
    let (path, body) = requests.recv().unwrap();
    assert_eq!(path, "/api/chat");
    assert_eq!(body["model"], "llama3");
    assert_eq!(body["options"]["seed"], 123);
    assert_eq!(body["messages"][0]["content"], judge_prompt(&entries[0]).unwrap(), "the book's judge prompt");
}

#[test]
fn judge_scores_through_an_openai_compatible_api_and_reports_http_errors() {
    let reply = serde_json::json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": "92"}}]}).to_string();
    let (base, requests) = serve(vec![(200, reply), (404, "{\"error\":\"model not found\"}".into())]);
    let mut judge = Judge::openai(&format!("{base}/v1/chat/completions"), "judge-model");
    judge.api_key = Some("test-key".into());
    let entries = with_responses();
    assert_eq!(judge.score_response(&entries[0]).unwrap(), Some(92));
    let (path, body) = requests.recv().unwrap();
    assert_eq!((path.as_str(), &body["model"], &body["temperature"]), ("/v1/chat/completions", &serde_json::json!("judge-model"), &serde_json::json!(0.0)));
    let err = judge.score_response(&entries[1]).unwrap_err().to_string();
    assert!(err.contains("HTTP 404") && err.contains("model not found") && err.contains(&base), "{err}");
}

#[test]
fn unreachable_judge_is_a_clear_error() {
    // A port that was just free: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/api/chat");
    let err = Judge::ollama(&url, "llama3").score_response(&with_responses()[0]).unwrap_err();
    assert!(matches!(&err, Error::Judge { url: u, .. } if *u == url), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("could not reach the judge") && msg.contains("ollama serve") && msg.contains("ollama pull llama3"), "{msg}");
}

//! Solutions to the exercises of chapter 7 (see `chapters/ch07/README.md`).

mod common;

use llm_from_scratch::ch02::{DataLoader, Dataset, Tokenizer};
use llm_from_scratch::ch07::*;

/// Exercise 7.1 solution: the Phi-3 prompt style, `<|user|>` then the instruction (and input),
/// `<|assistant|>:` then the response (the book's solution notebook): `PromptStyle::Phi3`.
fn format_input_phi(entry: &InstructionEntry) -> String {
    PromptStyle::Phi3.format_input(entry)
}

fn format_response_phi(output: &str) -> String {
    PromptStyle::Phi3.format_response(output)
}

#[test]
fn exercise_7_1_phi3_prompt_style() {
    let data = instruction_data(&common::store()).unwrap();
    let tokenizer = common::gpt2();
    let text = format_input_phi(&data[50]) + &format_response_phi(&data[50].output);
    assert_eq!(text, "<|user|>\nIdentify the correct spelling of the following word.\nOcassion\n<|assistant|>:\nThe correct spelling is 'Occasion.'");
    // The collate function and the loaders do not care about the prompt style: encode the
    // texts, and InstructionDataset batches them as before.
    let (train, _, _) = train_test_val_split(&data);
    let encode = |s: String| -> Vec<i64> { tokenizer.encode_text(&s).unwrap().into_iter().map(i64::from).collect() };
    let phi = InstructionDataset::from_token_ids(
        train.iter().map(|e| encode(format_input_phi(e) + &format_response_phi(&e.output))).collect(),
    );
    let alpaca = InstructionDataset::new(&train, tokenizer).unwrap();
    let total = |d: &InstructionDataset| (0..d.len()).map(|i| d.get(i).len()).sum::<usize>();
    // The shorter prompt saves tokens on every example, so training is faster.
    assert!((0..phi.len()).all(|i| phi.get(i).len() < alpaca.get(i).len()), "every example is shorter");
    let saved = (total(&alpaca) - total(&phi)) as f64 / train.len() as f64;
    assert!((15.0..30.0).contains(&saved), "tokens saved per example: {saved}");
    let (inputs, targets) = DataLoader::new(phi.clone(), 8, false, false, 0).unwrap().iter().next().unwrap();
    assert_eq!(inputs.size(), targets.size());
    // The response is extracted after the prompt, with `<|assistant|>:` removed.
    let generated = text.clone();
    let response = extract_response(&generated, &format_input_phi(&data[50])).replace("<|assistant|>:", "").trim().to_string();
    assert_eq!(response, "The correct spelling is 'Occasion.'");
    assert_eq!(PromptStyle::Phi3.extract_response(&generated, &format_input_phi(&data[50])), response, "the library's extraction");
    // The library's data set in the Phi-3 style holds the same ids, and knows each prompt's length.
    let styled = InstructionDataset::with_style(&train, tokenizer, PromptStyle::Phi3).unwrap();
    assert!((0..styled.len()).all(|i| styled.get(i) == phi.get(i)), "the same encoded examples");
}

#[test]
fn exercise_7_2_instruction_and_input_masking() {
    let data = instruction_data(&common::store()).unwrap();
    let tokenizer = common::gpt2();
    let (_, _, val) = train_test_val_split(&data);
    let masked = InstructionDataset::new(&val[..4], tokenizer).unwrap().with_prompt_masking(true);
    let (inputs, targets) = masked.batch(&[0, 1, 2, 3]);
    let targets: Vec<Vec<i64>> = Vec::<Vec<i64>>::try_from(&targets).unwrap();
    let inputs: Vec<Vec<i64>> = Vec::<Vec<i64>>::try_from(&inputs).unwrap();
    for (i, entry) in val[..4].iter().enumerate() {
        let prompt = tokenizer.encode_text(&format_input(entry)).unwrap().len();
        let response = tokenizer.encode_text(&format_response(&entry.output)).unwrap();
        // Only the response tokens and the one <|endoftext|> after them remain targets.
        let kept: Vec<i64> = targets[i].iter().copied().filter(|&t| t != IGNORE_INDEX).collect();
        let want: Vec<i64> = response.iter().map(|&t| i64::from(t)).chain([PAD_TOKEN_ID]).collect();
        assert_eq!(kept, want, "entry {i}: the response and <|endoftext|>");
        assert!(targets[i][..prompt - 1].iter().all(|&t| t == IGNORE_INDEX), "entry {i}: the prompt is masked");
        assert_eq!(inputs[i][..prompt], masked.get(i)[..prompt], "the inputs keep the prompt");
    }
}

#[test]
fn exercise_7_3_alpaca_format_loads() {
    // The original Alpaca data (52,002 entries, tatsu-lab/stanford_alpaca `alpaca_data.json`) has
    // the same three fields, so the same loader reads it; the book's solution then uses batch
    // size 4 and allowed_max_length 512 to fit its longer examples in memory.
    let alpaca = r#"[
        {"instruction": "Give three tips for staying healthy.", "input": "", "output": "1. Eat a balanced diet.\n2. Exercise.\n3. Sleep."},
        {"instruction": "Identify the odd one out.", "input": "Twitter, Instagram, Telegram", "output": "Telegram"}
    ]"#;
    let entries = parse_instruction_data(alpaca, std::path::Path::new("alpaca_data.json")).unwrap();
    assert_eq!(entries.len(), 2);
    assert!(format_input(&entries[1]).ends_with("### Input:\nTwitter, Instagram, Telegram"));
    let d = InstructionDataset::new(&entries, common::gpt2()).unwrap().with_allowed_max_length(Some(512));
    assert_eq!(d.collate.allowed_max_length, Some(512));
}

/// Exercise 7.4: instruction finetuning with LoRA (appendix E). Freeze the model, give every
/// linear layer a LoRA update, and train only the A and B matrices with chapter 5's loop pieces:
/// the loss falls while every original weight stays bit for bit what it was.
#[test]
fn exercise_7_4_instruction_finetuning_with_lora() {
    use llm_from_scratch::appendix_e::{lora_parameters, replace_linear_with_lora};
    use llm_from_scratch::ch04::{num_trainable_parameters, GptConfig, GptModel};
    use llm_from_scratch::ch05::{calc_loss_batch, AdamW};
    use llm_from_scratch::ch06::set_requires_grad_under;
    use tch::nn::VarStore;
    use tch::Device;

    let _rng = llm_from_scratch::rng_lock();
    let data = instruction_data(&common::store()).unwrap();
    let (train, _, _) = train_test_val_split(&data);
    let dataset = InstructionDataset::new(&train[..4], common::gpt2()).unwrap().with_allowed_max_length(Some(64));
    let (inputs, targets) = dataset.batch(&[0, 1, 2, 3]);

    let cfg = GptConfig { vocab_size: 50257, context_length: 64, emb_dim: 32, n_heads: 2, n_layers: 2, drop_rate: 0.0, qkv_bias: true };
    llm_from_scratch::set_seed(123);
    let vs = VarStore::new(Device::Cpu);
    let mut model = GptModel::new(&vs.root(), &cfg);
    set_requires_grad_under(&vs, "", false);
    let (rank, alpha) = (8, 16.0);
    assert_eq!(replace_linear_with_lora(&mut model, &vs, rank, alpha), 2 * 6 + 1, "6 linear layers per block and the head");
    let per_block = 4 * lora_parameters(32, 32, rank) + lora_parameters(32, 128, rank) + lora_parameters(128, 32, rank);
    assert_eq!(num_trainable_parameters(&vs), 2 * per_block + lora_parameters(32, 50257, rank));

    let frozen: Vec<(String, tch::Tensor)> =
        vs.variables().into_iter().filter(|(n, _)| !n.contains(".lora.")).map(|(n, t)| (n, t.copy())).collect();
    let mut optimizer = AdamW::new(&vs, 1e-2, 0.1);
    let first = calc_loss_batch(&inputs, &targets, &model, Device::Cpu, true).double_value(&[]);
    for _ in 0..30 {
        optimizer.backward_step(&calc_loss_batch(&inputs, &targets, &model, Device::Cpu, true));
    }
    let last = calc_loss_batch(&inputs, &targets, &model, Device::Cpu, false).double_value(&[]);
    assert!(last < 0.7 * first, "LoRA alone lowers the loss: {first:.3} -> {last:.3}");
    let vars = vs.variables();
    for (name, before) in &frozen {
        assert!(vars[name].equal(before), "{name} must not change");
    }
}

//! The data module's download path, against a tiny HTTP server on 127.0.0.1 started here
//! (no other network is used): checksums, the cache, the zip member, fallbacks, and the
//! messages that say what was expected.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use llm_from_scratch::data::{DataFile, DataStore};
use llm_from_scratch::Error;
use sha2::{Digest, Sha256};

/// A server on 127.0.0.1 answering GET `path` with the bytes registered for it (404 otherwise).
/// It serves until the test process ends; `hits` counts the requests it answered.
struct Server {
    base: String,
    hits: Arc<AtomicUsize>,
}

fn serve(routes: Vec<(&'static str, Vec<u8>)>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let routes: HashMap<&str, Vec<u8>> = routes.into_iter().collect();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            counter.fetch_add(1, Ordering::SeqCst);
            let _ = answer(stream, &routes);
        }
    });
    Server { base, hits }
}

fn answer(mut stream: TcpStream, routes: &HashMap<&str, Vec<u8>>) -> std::io::Result<()> {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buf[..n]);
    }
    let request = String::from_utf8_lossy(&request);
    let path = request.split_whitespace().nth(1).unwrap_or("/");
    let (status, body): (&str, &[u8]) = match routes.get(path) {
        Some(body) => ("200 OK", body),
        None => ("404 Not Found", b"not found"),
    };
    write!(stream, "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())?;
    stream.write_all(body)?;
    stream.flush()
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn data_file(name: &'static str, urls: Vec<String>, sha256: &str, zip_member: Option<&'static str>) -> DataFile {
    let urls: Vec<&'static str> = urls.into_iter().map(leak).collect();
    DataFile { name, urls: Box::leak(urls.into_boxed_slice()), sha256: Some(leak(sha256.to_string())), size: None, zip_member }
}

/// A fresh empty folder under the system's temporary folder.
fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "llm-data-test-{}-{tag}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every file under `dir`, recursively (temporary files included).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// A port on 127.0.0.1 where nothing listens.
fn closed_port_url(path: &str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}{path}")
}

#[test]
fn good_checksum_is_cached() {
    let body = b"I HAD always thought Jack Gisburn rather a cheap genius".to_vec();
    let server = serve(vec![("/good.txt", body.clone())]);
    let file = data_file("sub/good.txt", vec![format!("{}/good.txt", server.base)], &sha256(&body), None);
    let cache = temp_dir("good");
    let store = DataStore::new(None, &cache);
    let path = store.fetch(&file).unwrap();
    assert_eq!(path, cache.join("sub/good.txt"));
    assert_eq!(std::fs::read(&path).unwrap(), body);
    assert_eq!(files_under(&cache), std::slice::from_ref(&path), "only the file, no temporary left");
    // The second fetch comes from the cache: no new request.
    let hits = server.hits.load(Ordering::SeqCst);
    assert_eq!(store.fetch(&file).unwrap(), path);
    assert_eq!(server.hits.load(Ordering::SeqCst), hits, "served from the cache");
    std::fs::remove_dir_all(&cache).ok();
}

#[test]
fn bad_checksum_is_an_error_and_leaves_nothing() {
    let body = b"some other text".to_vec();
    let server = serve(vec![("/bad.txt", body.clone())]);
    let expected = sha256(b"the text we wanted");
    let file = data_file("bad.txt", vec![format!("{}/bad.txt", server.base)], &expected, None);
    let cache = temp_dir("bad");
    let err = DataStore::new(None, &cache).fetch(&file).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Checksum { .. }), "{msg}");
    assert!(msg.contains(&expected), "the message shows the expected hash: {msg}");
    assert!(msg.contains(&sha256(&body)), "the message shows the hash found: {msg}");
    assert_eq!(files_under(&cache), Vec::<PathBuf>::new(), "nothing is left in the cache");
    std::fs::remove_dir_all(&cache).ok();
}

#[test]
fn offline_without_local_folder_names_the_variable() {
    let file = data_file("the-verdict.txt", vec![closed_port_url("/the-verdict.txt")], &sha256(b"x"), None);
    let cache = temp_dir("offline");
    let err = DataStore::new(None, &cache).fetch(&file).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Download(_)), "{msg}");
    assert!(msg.contains("LLM_DATA_DIR"), "the message names the variable to set: {msg}");
    assert!(msg.contains("the-verdict.txt"), "and the file: {msg}");
    // With the variable set to a folder that lacks the file, the message says so.
    let local = temp_dir("offline-local");
    let err = DataStore::new(Some(local.clone()), &cache).fetch(&file).unwrap_err();
    assert!(err.to_string().contains(&local.join("the-verdict.txt").display().to_string()), "{err}");
    assert_eq!(files_under(&cache), Vec::<PathBuf>::new());
    std::fs::remove_dir_all(&cache).ok();
    std::fs::remove_dir_all(&local).ok();
}

#[test]
fn local_folder_is_used_and_checked() {
    let local = temp_dir("local");
    let cache = temp_dir("local-cache");
    std::fs::create_dir_all(local.join("gpt2_model")).unwrap();
    std::fs::write(local.join("gpt2_model/vocab.bpe"), "#version: 0.2\n").unwrap();
    let unreachable = vec![closed_port_url("/vocab.bpe")];
    // Right checksum: the local file, nothing downloaded.
    let good = data_file("gpt2_model/vocab.bpe", unreachable.clone(), &sha256(b"#version: 0.2\n"), None);
    let store = DataStore::new(Some(local.clone()), &cache);
    assert_eq!(store.fetch(&good).unwrap(), local.join("gpt2_model/vocab.bpe"));
    // Wrong checksum: an error with both hashes (the local file is left as it is).
    let expected = sha256(b"another file");
    let bad = data_file("gpt2_model/vocab.bpe", unreachable, &expected, None);
    let msg = store.fetch(&bad).unwrap_err().to_string();
    assert!(msg.contains(&expected) && msg.contains(&sha256(b"#version: 0.2\n")), "{msg}");
    assert!(local.join("gpt2_model/vocab.bpe").exists());
    assert_eq!(files_under(&cache), Vec::<PathBuf>::new());
    std::fs::remove_dir_all(&local).ok();
    std::fs::remove_dir_all(&cache).ok();
}

#[test]
fn zip_member_is_extracted_and_checked() {
    let member = b"ham\tGo until jurong point, crazy..\nspam\tFree entry in 2 a wkly comp\n".to_vec();
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("readme", zip::write::FileOptions::default()).unwrap();
    zip.write_all(b"the readme").unwrap();
    zip.start_file("SMSSpamCollection", zip::write::FileOptions::default()).unwrap();
    zip.write_all(&member).unwrap();
    let archive = zip.finish().unwrap().into_inner();
    // The first URL is missing (404): the second is used.
    let server = serve(vec![("/sms.zip", archive)]);
    let file = data_file(
        "SMSSpamCollection.tsv",
        vec![format!("{}/missing.zip", server.base), format!("{}/sms.zip", server.base)],
        &sha256(&member),
        Some("SMSSpamCollection"),
    );
    let cache = temp_dir("zip");
    let path = DataStore::new(None, &cache).fetch(&file).unwrap();
    assert_eq!(path, cache.join("SMSSpamCollection.tsv"));
    assert_eq!(std::fs::read(&path).unwrap(), member);
    assert_eq!(files_under(&cache), [path], "the archive itself is not kept");
    // A member that is not in the archive: an error naming it, nothing left.
    let missing = data_file("other.tsv", vec![format!("{}/sms.zip", server.base)], &sha256(&member), Some("Nope"));
    let cache2 = temp_dir("zip-missing");
    let err = DataStore::new(None, &cache2).fetch(&missing).unwrap_err();
    assert!(err.to_string().contains("Nope"), "{err}");
    assert_eq!(files_under(&cache2), Vec::<PathBuf>::new());
    std::fs::remove_dir_all(&cache).ok();
    std::fs::remove_dir_all(&cache2).ok();
}

#[test]
fn damaged_cache_file_is_downloaded_again() {
    let body = b"the right bytes".to_vec();
    let server = serve(vec![("/f.txt", body.clone())]);
    let file = data_file("f.txt", vec![format!("{}/f.txt", server.base)], &sha256(&body), None);
    let cache = temp_dir("damaged");
    std::fs::write(cache.join("f.txt"), b"half a downl").unwrap();
    let path = DataStore::new(None, &cache).fetch(&file).unwrap();
    assert_eq!(std::fs::read(path).unwrap(), body);
    std::fs::remove_dir_all(&cache).ok();
}

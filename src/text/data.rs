//! The book's data files: where each comes from, its sha256, and how to get it (chapter 2
//! downloads `the-verdict.txt`; chapter 6 the SMS Spam Collection; chapter 7 the instruction
//! data; the GPT-2 tokenizer reads OpenAI's `encoder.json` and `vocab.bpe`).
//!
//! [`fetch`] finds a file in this order:
//! 1. **A local folder**: when `LLM_DATA_DIR` names one, `$LLM_DATA_DIR/<name>` (the book's file
//!    names: `the-verdict.txt`, `SMSSpamCollection.tsv`, `instruction-data.json`,
//!    `gpt2_model/encoder.json`, `gpt2_model/vocab.bpe`). Tests and CI point it at a folder of
//!    these files, so nothing is downloaded.
//! 2. **The download cache**: `$LLM_CACHE_DIR`, else `$LLM_FS_HOME/data`, else
//!    `~/.cache/llm-from-scratch/data`.
//! 3. **A download** from the file's public URL into the cache (through a temporary file renamed
//!    into place once its checksum is right, so the cache never holds half a file).
//!
//! Every file is checked against its sha256 wherever it came from; a mismatch is an error that
//! shows both hashes. The one exception are files for which no published checksum could be
//! found (the larger GPT-2 checkpoints on Hugging Face, chapter 5.5): their entry has
//! `sha256: None`, says why, and the file's size is checked instead when it is known.
//! Offline and without the file, the error names `LLM_DATA_DIR`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::util::files::temp_path;

/// The environment variable naming a local folder of data files used instead of downloading.
pub const DATA_DIR_VAR: &str = "LLM_DATA_DIR";
/// The environment variable naming the download cache folder.
pub const CACHE_DIR_VAR: &str = "LLM_CACHE_DIR";

/// One data file the book uses: its name in the data folder, where to download it, its checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFile {
    /// Path relative to the data folder (the name the book's code saves it under).
    pub name: &'static str,
    /// Download locations, tried in order.
    pub urls: &'static [&'static str],
    /// sha256 of the file (of the extracted member when the URL serves a zip archive), lower-case
    /// hex. `None` only where no published checksum is known to this crate; such an entry's
    /// documentation says why, and the file is then checked by its size (when known) only.
    pub sha256: Option<&'static str>,
    /// Size in bytes, when known: checked when there is no sha256, and said in the message when
    /// the file cannot be had.
    pub size: Option<u64>,
    /// When the URLs serve a zip archive: the archive member that is this file.
    pub zip_member: Option<&'static str>,
}

/// "The Verdict" by Edith Wharton (public domain), the chapter 2 and 5 training text: 20,479
/// characters, 5145 GPT-2 tokens.
pub const THE_VERDICT: DataFile = DataFile {
    name: "the-verdict.txt",
    urls: &["https://raw.githubusercontent.com/rasbt/LLMs-from-scratch/main/ch02/01_main-chapter-code/the-verdict.txt"],
    sha256: Some("b41e41a68f0398a3154ae69e2e4c0e2694e17fe0d66730536837f1b01935b31f"),
    size: Some(20479),
    zip_member: None,
};

/// The SMS Spam Collection v.1 (Almeida, Gómez Hidalgo, Yamakami, 2011), chapter 6: one
/// `label\ttext` line per message, 5574 lines. UCI serves it in a zip archive as `SMSSpamCollection`.
pub const SMS_SPAM_COLLECTION: DataFile = DataFile {
    name: "SMSSpamCollection.tsv",
    urls: &[
        "https://archive.ics.uci.edu/static/public/228/sms+spam+collection.zip",
        "https://f001.backblazeb2.com/file/LLMs-from-scratch/sms%2Bspam%2Bcollection.zip",
    ],
    sha256: Some("7d039a24a6083ed9ef0f806ebad56bbb976e3aeb8de05669173bfdc4996c239d"),
    size: Some(477907),
    zip_member: Some("SMSSpamCollection"),
};

/// The book's instruction data set (chapter 7): 1100 entries with `instruction`, `input`, `output`.
pub const INSTRUCTION_DATA: DataFile = DataFile {
    name: "instruction-data.json",
    urls: &["https://raw.githubusercontent.com/rasbt/LLMs-from-scratch/main/ch07/01_main-chapter-code/instruction-data.json"],
    sha256: Some("7e09a9af353722ca15c18bc580f093f9c39d3178335a75177319cb1e1d163944"),
    size: Some(203524),
    zip_member: None,
};

/// The preference data of chapter 7's DPO bonus (`instruction-data-with-preference.json`): the
/// 1,100 entries of [`INSTRUCTION_DATA`], each with a preferred (`chosen`) and a dispreferred
/// (`rejected`) response beside its `output`.
pub const INSTRUCTION_DATA_WITH_PREFERENCE: DataFile = DataFile {
    name: "instruction-data-with-preference.json",
    urls: &["https://raw.githubusercontent.com/rasbt/LLMs-from-scratch/main/ch07/04_preference-tuning-with-dpo/instruction-data-with-preference.json"],
    sha256: Some("305315abf14f65fa42c01a0877572f832606571c2a7d49f152ac1d758b16756e"),
    size: Some(386968),
    zip_member: None,
};

/// OpenAI's GPT-2 vocabulary: token text -> id, 50,257 entries.
pub const GPT2_ENCODER_JSON: DataFile = DataFile {
    name: "gpt2_model/encoder.json",
    urls: &[
        "https://openaipublic.blob.core.windows.net/gpt-2/models/124M/encoder.json",
        "https://raw.githubusercontent.com/rasbt/LLMs-from-scratch/main/ch02/02_bonus_bytepair-encoder/gpt2_model/encoder.json",
    ],
    sha256: Some("196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"),
    size: Some(1042301),
    zip_member: None,
};

/// OpenAI's GPT-2 merges: a `#version` line and 50,000 merges in rank order.
pub const GPT2_VOCAB_BPE: DataFile = DataFile {
    name: "gpt2_model/vocab.bpe",
    urls: &[
        "https://openaipublic.blob.core.windows.net/gpt-2/models/124M/vocab.bpe",
        "https://raw.githubusercontent.com/rasbt/LLMs-from-scratch/main/ch02/02_bonus_bytepair-encoder/gpt2_model/vocab.bpe",
    ],
    sha256: Some("1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"),
    size: Some(456318),
    zip_member: None,
};

/// The two files of a GPT-2 checkpoint on Hugging Face (chapter 5.5): `config.json` (the sizes)
/// and `model.safetensors` (the weights), from `openai-community/<name>`. In the data folder they
/// are `openai-community/<name>/config.json` and `openai-community/<name>/model.safetensors`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HfCheckpoint {
    /// The model's name: `gpt2`, `gpt2-medium`, `gpt2-large` or `gpt2-xl`.
    pub name: &'static str,
    /// `config.json`.
    pub config: DataFile,
    /// `model.safetensors`.
    pub weights: DataFile,
}

/// OpenAI's GPT-2 small (124M) as Hugging Face serves it (revision `607a30d7`). Both checksums
/// are the ones Hugging Face publishes for the files (the LFS `oid sha256` of `model.safetensors`),
/// as recorded by two unrelated public projects that pin this revision; their sizes agree.
pub const HF_GPT2: HfCheckpoint = HfCheckpoint {
    name: "gpt2",
    config: DataFile {
        name: "openai-community/gpt2/config.json",
        urls: &["https://huggingface.co/openai-community/gpt2/resolve/main/config.json"],
        sha256: Some("0daed7749b4f02b8f76240d5444551d7b08712dab4d0adb8239c56ba823bb7b4"),
        size: Some(665),
        zip_member: None,
    },
    weights: DataFile {
        name: "openai-community/gpt2/model.safetensors",
        urls: &["https://huggingface.co/openai-community/gpt2/resolve/main/model.safetensors"],
        sha256: Some("248dfc3911869ec493c76e65bf2fcf7f615828b0254c12b473182f0f81d3a707"),
        size: Some(548105171),
        zip_member: None,
    },
};

/// GPT-2 medium (355M) from Hugging Face. **Not verified**: no published sha256 or size of these
/// files could be found from this project's machines (which cannot reach Hugging Face), and a
/// made-up checksum would be worse than none. The loader still checks every tensor's name and
/// shape against `config.json`, and a truncated file is an error, so a wrong file cannot load
/// silently; a corrupted value inside a complete file would not be noticed.
pub const HF_GPT2_MEDIUM: HfCheckpoint = HfCheckpoint {
    name: "gpt2-medium",
    config: DataFile {
        name: "openai-community/gpt2-medium/config.json",
        urls: &["https://huggingface.co/openai-community/gpt2-medium/resolve/main/config.json"],
        sha256: None,
        size: None,
        zip_member: None,
    },
    weights: DataFile {
        name: "openai-community/gpt2-medium/model.safetensors",
        urls: &["https://huggingface.co/openai-community/gpt2-medium/resolve/main/model.safetensors"],
        sha256: None,
        size: None,
        zip_member: None,
    },
};

/// GPT-2 large (774M) from Hugging Face. Not verified, for the reason given at [`HF_GPT2_MEDIUM`].
pub const HF_GPT2_LARGE: HfCheckpoint = HfCheckpoint {
    name: "gpt2-large",
    config: DataFile {
        name: "openai-community/gpt2-large/config.json",
        urls: &["https://huggingface.co/openai-community/gpt2-large/resolve/main/config.json"],
        sha256: None,
        size: None,
        zip_member: None,
    },
    weights: DataFile {
        name: "openai-community/gpt2-large/model.safetensors",
        urls: &["https://huggingface.co/openai-community/gpt2-large/resolve/main/model.safetensors"],
        sha256: None,
        size: None,
        zip_member: None,
    },
};

/// GPT-2 XL (1558M) from Hugging Face. Not verified, for the reason given at [`HF_GPT2_MEDIUM`].
pub const HF_GPT2_XL: HfCheckpoint = HfCheckpoint {
    name: "gpt2-xl",
    config: DataFile {
        name: "openai-community/gpt2-xl/config.json",
        urls: &["https://huggingface.co/openai-community/gpt2-xl/resolve/main/config.json"],
        sha256: None,
        size: None,
        zip_member: None,
    },
    weights: DataFile {
        name: "openai-community/gpt2-xl/model.safetensors",
        urls: &["https://huggingface.co/openai-community/gpt2-xl/resolve/main/model.safetensors"],
        sha256: None,
        size: None,
        zip_member: None,
    },
};

/// The GPT-2 checkpoints on Hugging Face, smallest first.
pub const HF_GPT2_CHECKPOINTS: &[HfCheckpoint] = &[HF_GPT2, HF_GPT2_MEDIUM, HF_GPT2_LARGE, HF_GPT2_XL];

/// Every file above.
pub const ALL: &[DataFile] = &[
    THE_VERDICT,
    SMS_SPAM_COLLECTION,
    INSTRUCTION_DATA,
    INSTRUCTION_DATA_WITH_PREFERENCE,
    GPT2_ENCODER_JSON,
    GPT2_VOCAB_BPE,
    HF_GPT2.config,
    HF_GPT2.weights,
    HF_GPT2_MEDIUM.config,
    HF_GPT2_MEDIUM.weights,
    HF_GPT2_LARGE.config,
    HF_GPT2_LARGE.weights,
    HF_GPT2_XL.config,
    HF_GPT2_XL.weights,
];

impl DataFile {
    /// Check the file at `path` against this entry: its sha256, or, for an entry without one,
    /// its size when known (an entry with neither accepts any file).
    pub fn verify(&self, path: &Path) -> Result<()> {
        match (self.sha256, self.size) {
            (Some(sha256), _) => verify(path, sha256),
            (None, Some(size)) => {
                let found = std::fs::metadata(path).map_err(|e| Error::io(path, e))?.len();
                check_size(found, size, path)
            }
            (None, None) => Ok(()),
        }
    }

    /// Check a download written to `tmp` (whose sha256 is `found`); errors name `dest`.
    fn check_download(&self, found: &str, tmp: &Path, dest: &Path) -> Result<()> {
        match (self.sha256, self.size) {
            (Some(sha256), _) => check(found, sha256, dest),
            (None, Some(size)) => check_size(std::fs::metadata(tmp).map_err(|e| Error::io(tmp, e))?.len(), size, dest),
            (None, None) => {
                eprintln!("{}: no checksum is known for this file, so it is not verified (sha256 {found})", self.name);
                Ok(())
            }
        }
    }

    /// What is known of the file: "20479 bytes, sha256 b41e...", or that nothing is.
    pub fn describe(&self) -> String {
        match (self.size, self.sha256) {
            (Some(size), Some(sha256)) => format!("{size} bytes, sha256 {sha256}"),
            (Some(size), None) => format!("{size} bytes; no checksum known"),
            (None, Some(sha256)) => format!("sha256 {sha256}"),
            (None, None) => "no size or checksum known".to_string(),
        }
    }
}

fn check_size(found: u64, expected: u64, path: &Path) -> Result<()> {
    if found == expected {
        Ok(())
    } else {
        Err(Error::SizeMismatch { path: path.to_path_buf(), expected, found })
    }
}

/// Where data files are looked for: a local folder (optional) and the download cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataStore {
    /// Folder used instead of downloading (`LLM_DATA_DIR`).
    pub local_dir: Option<PathBuf>,
    /// Folder that downloads go to.
    pub cache_dir: PathBuf,
}

impl DataStore {
    /// A store with these folders (tests use this instead of the environment).
    pub fn new(local_dir: Option<PathBuf>, cache_dir: impl Into<PathBuf>) -> Self {
        DataStore { local_dir, cache_dir: cache_dir.into() }
    }

    /// The store the environment describes: `LLM_DATA_DIR`; `LLM_CACHE_DIR`, else
    /// `$LLM_FS_HOME/data`, else `~/.cache/llm-from-scratch/data`.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let cache_dir = var(CACHE_DIR_VAR).unwrap_or_else(|| {
            let home = var("LLM_FS_HOME").unwrap_or_else(|| {
                var("HOME").unwrap_or_else(std::env::temp_dir).join(".cache").join("llm-from-scratch")
            });
            home.join("data")
        });
        DataStore { local_dir: var(DATA_DIR_VAR), cache_dir }
    }

    /// The path of `file`, verified: from the local folder, the cache, or downloaded now.
    pub fn fetch(&self, file: &DataFile) -> Result<PathBuf> {
        let local = self.local_dir.as_ref().map(|dir| dir.join(file.name));
        if let Some(path) = local.as_ref().filter(|p| p.is_file()) {
            file.verify(path)?;
            return Ok(path.clone());
        }
        let cached = self.cache_dir.join(file.name);
        if cached.is_file() {
            match file.verify(&cached) {
                Ok(()) => return Ok(cached),
                // A damaged download in the cache (the local folder is never touched): fetch it again.
                Err(e @ (Error::Checksum { .. } | Error::SizeMismatch { .. })) => {
                    eprintln!("{e}: downloading it again");
                    std::fs::remove_file(&cached).map_err(|e| Error::io(&cached, e))?;
                }
                Err(e) => return Err(e),
            }
        }
        let mut failures = Vec::new();
        for url in file.urls {
            match self.download(file, url, &cached) {
                Ok(()) => return Ok(cached),
                Err(e @ (Error::Checksum { .. } | Error::SizeMismatch { .. })) => return Err(e),
                Err(e) => failures.push(format!("{url}: {e}")),
            }
        }
        let where_local = match &local {
            Some(path) => format!("{DATA_DIR_VAR} is set, but {} does not exist", path.display()),
            None => format!("{DATA_DIR_VAR} is not set"),
        };
        Err(Error::Download(format!(
            "{} is not in the cache ({}) and could not be downloaded ({}). Offline? Set {DATA_DIR_VAR} to a folder \
             that holds {} ({}); {where_local}.",
            file.name,
            home_relative(&self.cache_dir),
            failures.join("; "),
            file.name,
            file.describe(),
        )))
    }

    /// Download `url` into `dest` through a temporary file; check the checksum before the rename.
    fn download(&self, file: &DataFile, url: &str, dest: &Path) -> Result<()> {
        let dir = dest.parent().expect("a file in the cache folder has a parent");
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let tmp = temp_path(dest);
        let result = (|| {
            eprintln!("downloading {} from {url}", file.name);
            // A proxy from the environment (HTTPS_PROXY, ...) is used, except for this machine.
            let loopback = ["http://127.", "http://localhost", "http://[::1]"].iter().any(|p| url.starts_with(p));
            let mut config = ureq::Agent::config_builder();
            if loopback {
                config = config.proxy(None);
            }
            let agent: ureq::Agent = config
                .timeout_connect(Some(Duration::from_secs(15)))
                .timeout_global(Some(Duration::from_secs(30 * 60)))
                .build()
                .into();
            let response = agent.get(url).call().map_err(|e| Error::Download(e.to_string()))?;
            let mut body = response.into_body().into_reader();
            match file.zip_member {
                None => {
                    let found = copy_hashing(&mut body, &tmp)?;
                    file.check_download(&found, &tmp, dest)
                }
                Some(member) => {
                    let zip_path = temp_path(&dest.with_extension("zip"));
                    let extracted =
                        copy_hashing(&mut body, &zip_path).and_then(|_| extract_member(&zip_path, member, &tmp));
                    let _ = std::fs::remove_file(&zip_path);
                    file.check_download(&extracted?, &tmp, dest)
                }
            }
        })();
        match result {
            Ok(()) => std::fs::rename(&tmp, dest).map_err(|e| Error::io(dest, e)),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// The contents of `file` as text.
    pub fn read_to_string(&self, file: &DataFile) -> Result<String> {
        let path = self.fetch(file)?;
        std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))
    }
}

/// The path of `file` from the store the environment describes ([`DataStore::from_env`]).
pub fn fetch(file: &DataFile) -> Result<PathBuf> {
    DataStore::from_env().fetch(file)
}

/// The contents of `file` as text, from the store the environment describes.
pub fn read_to_string(file: &DataFile) -> Result<String> {
    DataStore::from_env().read_to_string(file)
}

/// The text of "The Verdict" (the book's `raw_text`, section 2.2).
pub fn the_verdict() -> Result<String> {
    read_to_string(&THE_VERDICT)
}

/// The sha256 of a file, lower-case hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Check `path` against `expected` (remembering files verified already in this process, by
/// path, size and modification time, so a large file is hashed once).
pub fn verify(path: &Path, expected: &str) -> Result<()> {
    /// (path, size, modification time, expected sha256) of the files that passed.
    type Verified = Vec<(PathBuf, u64, Option<SystemTime>, String)>;
    static VERIFIED: Mutex<Verified> = Mutex::new(Vec::new());
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let key = (path.to_path_buf(), meta.len(), meta.modified().ok(), expected.to_string());
    if VERIFIED.lock().map(|v| v.contains(&key)).unwrap_or(false) {
        return Ok(());
    }
    let found = sha256_file(path)?;
    check(&found, expected, path)?;
    if let Ok(mut v) = VERIFIED.lock() {
        v.push(key);
    }
    Ok(())
}

fn check(found: &str, expected: &str, path: &Path) -> Result<()> {
    if found.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(Error::Checksum { path: path.to_path_buf(), expected: expected.to_string(), found: found.to_string() })
    }
}

/// Copy `reader` into a new file at `path`; return the sha256 of what was written.
fn copy_hashing(reader: &mut impl Read, path: &Path) -> Result<String> {
    let mut out = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::Download(format!("reading the response: {e}"))),
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(|e| Error::io(path, e))?;
    }
    out.sync_all().map_err(|e| Error::io(path, e))?;
    Ok(hex(&hasher.finalize()))
}

/// Extract the member named `member` (or ending in `/member`) of the zip archive at `zip_path`
/// into `out`; return its sha256.
fn extract_member(zip_path: &Path, member: &str, out: &Path) -> Result<String> {
    let f = std::fs::File::open(zip_path).map_err(|e| Error::io(zip_path, e))?;
    let bad_zip = |reason: String| Error::Format { path: zip_path.to_path_buf(), reason };
    let mut archive = zip::ZipArchive::new(f).map_err(|e| bad_zip(format!("not a zip archive: {e}")))?;
    let name = archive
        .file_names()
        .find(|n| *n == member || n.ends_with(&format!("/{member}")))
        .map(str::to_string)
        .ok_or_else(|| bad_zip(format!("the archive has no member {member:?}")))?;
    let mut entry = archive.by_name(&name).map_err(|e| bad_zip(format!("{name}: {e}")))?;
    copy_hashing(&mut entry, out)
}

/// `path` with the home folder written `~` (messages then read the same on every machine).
fn home_relative(path: &Path) -> String {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
    match home.as_deref().and_then(|home| path.strip_prefix(home).ok()) {
        Some(rest) => Path::new("~").join(rest).display().to_string(),
        None => path.display().to_string(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_write_the_home_folder_as_a_tilde() {
        let home = PathBuf::from(std::env::var_os("HOME").expect("HOME is set"));
        assert_eq!(home_relative(&home.join(".cache/llm-from-scratch/data")), "~/.cache/llm-from-scratch/data");
        assert_eq!(home_relative(Path::new("/srv/data")), "/srv/data", "a folder elsewhere keeps its path");
    }

    #[test]
    fn sha256_of_a_known_string() {
        let dir = std::env::temp_dir().join(format!("llm-data-sha-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("abc.txt");
        std::fs::write(&path, "abc").unwrap();
        let h = sha256_file(&path).unwrap();
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn names_are_distinct_and_hashes_well_formed() {
        for (i, f) in ALL.iter().enumerate() {
            match f.sha256 {
                Some(sha256) => {
                    assert_eq!(sha256.len(), 64, "{}", f.name);
                    assert!(sha256.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()), "{}", f.name);
                }
                // Only the larger GPT-2 checkpoints lack a published checksum (see HF_GPT2_MEDIUM).
                None => assert!(
                    ["gpt2-medium", "gpt2-large", "gpt2-xl"].iter().any(|m| f.name.starts_with(&format!("openai-community/{m}/"))),
                    "{} has no sha256",
                    f.name
                ),
            }
            assert!(!f.urls.is_empty(), "{}", f.name);
            assert!(ALL[i + 1..].iter().all(|g| g.name != f.name), "{} twice", f.name);
        }
    }
}

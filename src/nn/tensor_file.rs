//! Safetensors files: reading one tensor at a time, writing atomically, with metadata.
//!
//! One reader and one writer for every weight file of the crate: the book's state dicts
//! ([`crate::nn::model::save_safetensors`]), training checkpoints ([`crate::training::checkpoint`]) and
//! Hugging Face's GPT-2 files ([`crate::nn::gpt2`]). Files written here load in PyTorch with
//! `safetensors.torch.load_file`.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};
use crate::util::files::write_atomic_with;

/// The header key of the free-form metadata.
const METADATA: &str = "__metadata__";

/// One tensor's entry in a safetensors header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafetensorsEntry {
    /// The element type (`F32`, `F16`, `BF16`, ...) as a tch kind.
    pub kind: Kind,
    pub shape: Vec<i64>,
    /// Byte range within the data section (after the header).
    pub begin: u64,
    pub end: u64,
}

/// A safetensors file opened for reading one tensor at a time, so that loading GPT-2 XL (6 GB)
/// needs memory for the model plus one tensor, not for a second copy of the whole file.
///
/// The format: 8 bytes (little-endian u64) giving the header's length `n`, `n` bytes of JSON
/// `{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...}`, then the
/// tensors' bytes (little-endian). [`open`](Self::open) checks the header against the file's
/// length, so a truncated or damaged file is an error naming the file, never a panic.
#[derive(Debug, Clone)]
pub struct SafetensorsFile {
    pub path: PathBuf,
    /// Where the data section starts (8 + header length).
    pub data_start: u64,
    /// The tensors by name.
    pub entries: BTreeMap<String, SafetensorsEntry>,
    /// The header's `__metadata__` (free-form text by key; empty when there is none).
    pub metadata: BTreeMap<String, String>,
}

impl SafetensorsFile {
    /// Read and check the header of the safetensors file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bad = |reason: String| Error::Format { path: path.into(), reason };
        let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let file_len = f.metadata().map_err(|e| Error::io(path, e))?.len();
        if file_len < 8 {
            return Err(bad(format!("not a safetensors file: {file_len} bytes, shorter than the 8-byte header length")));
        }
        let mut len_bytes = [0u8; 8];
        f.read_exact(&mut len_bytes).map_err(|e| Error::io(path, e))?;
        let header_len = u64::from_le_bytes(len_bytes);
        if header_len > file_len - 8 || header_len > 100_000_000 {
            return Err(bad(format!(
                "truncated or not a safetensors file: the header claims {header_len} bytes, the file has {file_len} in all"
            )));
        }
        let mut header = vec![0u8; header_len as usize];
        f.read_exact(&mut header).map_err(|e| Error::io(path, e))?;
        let json: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&header).map_err(|e| bad(format!("the safetensors header is not a JSON object: {e}")))?;
        let data_start = 8 + header_len;
        let data_len = file_len - data_start;
        let mut entries = BTreeMap::new();
        let mut metadata = BTreeMap::new();
        for (name, v) in json {
            if name == METADATA {
                metadata = serde_json::from_value(v).map_err(|e| bad(format!("'{METADATA}' is not a map of strings: {e}")))?;
                continue;
            }
            let field = |key: &str| v.get(key).ok_or_else(|| bad(format!("tensor '{name}' has no '{key}' in the header")));
            let dtype = field("dtype")?.as_str().unwrap_or("?");
            let (kind, elt_size) = kind_of_dtype(dtype).ok_or_else(|| bad(format!("tensor '{name}': unsupported dtype {dtype}")))?;
            let numbers = |key: &str| -> Result<Vec<u64>> {
                field(key)?
                    .as_array()
                    .and_then(|a| a.iter().map(|x| x.as_u64()).collect::<Option<Vec<u64>>>())
                    .ok_or_else(|| bad(format!("tensor '{name}': '{key}' is not a list of non-negative integers")))
            };
            let shape = numbers("shape")?;
            let offsets = numbers("data_offsets")?;
            let [begin, end] = offsets[..] else {
                return Err(bad(format!("tensor '{name}': data_offsets must be [begin, end]")));
            };
            let numel = shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
            let want = numel.and_then(|n| n.checked_mul(elt_size));
            if end < begin || want != Some(end - begin) {
                return Err(bad(format!("tensor '{name}': {dtype} {shape:?} needs {want:?} bytes, the header gives {begin}..{end}")));
            }
            if end > data_len {
                return Err(bad(format!(
                    "truncated: tensor '{name}' ends at byte {} of the data, which has only {data_len} bytes",
                    end
                )));
            }
            let shape = shape.iter().map(|&d| d as i64).collect();
            entries.insert(name, SafetensorsEntry { kind, shape, begin, end });
        }
        Ok(Self { path: path.to_path_buf(), data_start, entries, metadata })
    }

    /// The names of the tensors, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Read the tensor `name` into a new CPU tensor.
    pub fn read(&self, name: &str) -> Result<Tensor> {
        let entry = self
            .entries
            .get(name)
            .ok_or_else(|| Error::MissingTensor { name: name.to_string(), path: self.path.clone() })?;
        let mut f = std::fs::File::open(&self.path).map_err(|e| Error::io(&self.path, e))?;
        f.seek(SeekFrom::Start(self.data_start + entry.begin)).map_err(|e| Error::io(&self.path, e))?;
        let mut bytes = vec![0u8; (entry.end - entry.begin) as usize];
        f.read_exact(&mut bytes).map_err(|e| Error::io(&self.path, e))?;
        // safetensors stores little-endian values, as x86 and ARM hold them in memory.
        Ok(Tensor::f_from_data_size(&bytes, &entry.shape, entry.kind)?)
    }

    /// Read every tensor, sorted by name.
    pub fn read_all(&self) -> Result<Vec<(String, Tensor)>> {
        self.names().map(|name| Ok((name.to_string(), self.read(name)?))).collect()
    }
}

/// The safetensors dtypes this crate reads and writes, with their tch kinds and element sizes.
const DTYPES: [(&str, Kind, u64); 10] = [
    ("F64", Kind::Double, 8),
    ("F32", Kind::Float, 4),
    ("F16", Kind::Half, 2),
    ("BF16", Kind::BFloat16, 2),
    ("I64", Kind::Int64, 8),
    ("I32", Kind::Int, 4),
    ("I16", Kind::Int16, 2),
    ("I8", Kind::Int8, 1),
    ("U8", Kind::Uint8, 1),
    ("BOOL", Kind::Bool, 1),
];

/// The tch kind and element size of a safetensors dtype.
fn kind_of_dtype(dtype: &str) -> Option<(Kind, u64)> {
    DTYPES.iter().find(|d| d.0 == dtype).map(|d| (d.1, d.2))
}

/// The safetensors dtype of a tch kind.
fn dtype_of_kind(kind: Kind) -> Option<&'static str> {
    DTYPES.iter().find(|d| d.1 == kind).map(|d| d.0)
}

/// Write `tensors` (any device; sorted by name in the file) and `metadata` as a safetensors
/// file at `path`, atomically (see [`write_atomic_with`]): one tensor's bytes in memory at a
/// time. Errors name the file and, for a tensor of a kind safetensors cannot hold, the tensor.
pub fn write_safetensors(path: &Path, tensors: &[(String, Tensor)], metadata: &BTreeMap<String, String>) -> Result<()> {
    let mut sorted: Vec<&(String, Tensor)> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut header = serde_json::Map::new();
    if !metadata.is_empty() {
        header.insert(METADATA.into(), serde_json::to_value(metadata).expect("strings serialise"));
    }
    let mut offset = 0u64;
    for (name, t) in &sorted {
        let dtype = dtype_of_kind(t.kind()).ok_or_else(|| Error::Format {
            path: path.into(),
            reason: format!("tensor '{name}': safetensors cannot hold a {:?} tensor", t.kind()),
        })?;
        let bytes = t.numel() as u64 * kind_of_dtype(dtype).expect("a listed dtype").1;
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": dtype, "shape": t.size(), "data_offsets": [offset, offset + bytes]}),
        );
        offset += bytes;
    }
    let mut json = serde_json::to_vec(&header).expect("the header serialises");
    while json.len() % 8 != 0 {
        json.push(b' '); // the format pads the header to 8 bytes with spaces
    }
    write_atomic_with(path, |f| {
        f.write_all(&(json.len() as u64).to_le_bytes())?;
        f.write_all(&json)?;
        for (_, t) in &sorted {
            let t = t.detach().to_device(Device::Cpu).contiguous();
            let mut bytes = vec![0u8; t.numel() * t.kind().elt_size_in_bytes()];
            t.f_copy_data_u8(&mut bytes, t.numel()).map_err(std::io::Error::other)?;
            f.write_all(&bytes)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_metadata_kinds_and_truncation() {
        let dir = std::env::temp_dir().join(format!("llm-fs-tensor-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.safetensors");
        let tensors = vec![
            ("b.weight".to_string(), Tensor::from_slice(&[1.5f32, -2.0, 3.25, 0.0, 5.0, 6.0]).view([2, 3])),
            ("a.steps".to_string(), Tensor::from_slice(&[7i64])),
            ("c.half".to_string(), Tensor::from_slice(&[0.5f32, 1.0]).to_kind(Kind::Half)),
        ];
        let metadata = BTreeMap::from([("note".to_string(), "{\"x\": 1}".to_string())]);
        write_safetensors(&path, &tensors, &metadata).unwrap();

        let bytes = std::fs::read(&path).unwrap();
        let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap());
        assert_eq!(header_len % 8, 0, "the header is padded to 8 bytes");
        let file = SafetensorsFile::open(&path).unwrap();
        assert_eq!(file.names().collect::<Vec<_>>(), ["a.steps", "b.weight", "c.half"], "sorted by name");
        assert_eq!(file.metadata, metadata);
        for (name, t) in &tensors {
            let back = file.read(name).unwrap();
            assert_eq!((back.kind(), back.size()), (t.kind(), t.size()), "{name}");
            assert!(back.equal(t), "{name} round-trips bit for bit");
        }
        assert_eq!(file.data_start + 8 + 24 + 4, bytes.len() as u64, "i64 + 6 f32 + 2 f16 bytes of data");

        // A cut file is an error naming the tensor that no longer fits, never a panic.
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let err = SafetensorsFile::open(&path).unwrap_err().to_string();
        assert!(err.contains("truncated") && err.contains("c.half"), "{err}");
        std::fs::write(&path, &bytes[..5]).unwrap();
        assert!(SafetensorsFile::open(&path).unwrap_err().to_string().contains("shorter than the 8-byte"));
        // An unwritable tensor kind is refused before anything is written.
        let bad = vec![("z".to_string(), Tensor::from_slice(&[1i64]).to_kind(Kind::ComplexFloat))];
        let err = write_safetensors(&dir.join("bad.safetensors"), &bad, &BTreeMap::new()).unwrap_err().to_string();
        assert!(err.contains("'z'") && !dir.join("bad.safetensors").exists(), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

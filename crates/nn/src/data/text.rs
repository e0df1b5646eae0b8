//! Character-level text for language models: a vocabulary, encoding and
//! decoding, a train/validation cut, random training windows and the
//! non-overlapping validation windows.

use std::io::Read;
use std::path::Path;

use rand::Rng;

use crate::error::{Error, Result};

/// A text as a sequence of character ids.
///
/// The vocabulary is the sorted set of distinct characters, so ids are the
/// same as Python's `sorted(set(text))` gives. [`split`](Self::split) cuts
/// the first fraction off for training and keeps the rest for validation
/// (`int(fraction · len)`, as the reference script does);
/// [`sample_windows`](Self::sample_windows) draws training batches and
/// [`windows`](Self::windows) lists the validation windows. Nothing here is
/// specific to one model: a transformer and an LSTM read the same batches.
///
/// ```
/// use rand::SeedableRng;
/// use tapegrad_nn::data::CharText;
/// let text = CharText::from_text("to be or not to be");
/// assert_eq!(text.vocab_size(), 7); // ' ', 'b', 'e', 'n', 'o', 'r', 't'
/// let ids = text.encode("be")?;
/// assert_eq!(text.decode(&ids), "be");
/// let (train, val) = text.split(0.5);
/// assert_eq!((train.len(), val.len()), (9, 9));
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let (x, y) = CharText::sample_windows(train, 2, 4, &mut rng)?;
/// assert_eq!((x.len(), y.len()), (8, 8)); // 2 windows of 4 inputs, targets shifted by one
/// # Ok::<(), tapegrad_nn::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct CharText {
    vocab: Vec<char>,
    ids: Vec<usize>,
}

impl CharText {
    /// The text with its own vocabulary.
    pub fn from_text(text: &str) -> Self {
        let mut vocab: Vec<char> = text.chars().collect();
        vocab.sort_unstable();
        vocab.dedup();
        let ids = text
            .chars()
            .map(|c| vocab.binary_search(&c).expect("in the vocabulary"))
            .collect();
        CharText { vocab, ids }
    }

    /// Reads a UTF-8 text file, gzip-compressed if its name ends in `.gz`.
    ///
    /// ```
    /// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/tinyshakespeare.txt.gz");
    /// let text = tapegrad_nn::data::CharText::load(path)?;
    /// assert_eq!((text.len(), text.vocab_size()), (1_115_394, 65));
    /// # Ok::<(), tapegrad_nn::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] naming the file if it cannot be read or decompressed
    /// or is not UTF-8.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let mut text = String::new();
        let read = if path.extension().is_some_and(|e| e == "gz") {
            flate2::read::GzDecoder::new(file).read_to_string(&mut text)
        } else {
            std::io::BufReader::new(file).read_to_string(&mut text)
        };
        read.map_err(|e| Error::io(path, e))?;
        Ok(Self::from_text(&text))
    }

    /// The distinct characters, sorted; a character's id is its position.
    pub fn vocab(&self) -> &[char] {
        &self.vocab
    }

    /// Number of distinct characters.
    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    /// The whole text as ids.
    pub fn ids(&self) -> &[usize] {
        &self.ids
    }

    /// Length in characters.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The ids of `s`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming a character outside the vocabulary.
    pub fn encode(&self, s: &str) -> Result<Vec<usize>> {
        s.chars()
            .map(|c| {
                self.vocab.binary_search(&c).map_err(|_| {
                    Error::invalid(
                        "CharText::encode",
                        format!(
                            "{c:?} is not in the vocabulary of {} characters",
                            self.vocab.len()
                        ),
                    )
                })
            })
            .collect()
    }

    /// The text of `ids`; an id outside the vocabulary becomes `'�'`.
    pub fn decode(&self, ids: &[usize]) -> String {
        ids.iter()
            .map(|&i| self.vocab.get(i).copied().unwrap_or('\u{fffd}'))
            .collect()
    }

    /// `(train, validation)`: the first `int(train_fraction · len)` ids and
    /// the rest.
    pub fn split(&self, train_fraction: f64) -> (&[usize], &[usize]) {
        let cut = ((train_fraction.clamp(0.0, 1.0) * self.len() as f64) as usize).min(self.len());
        self.ids.split_at(cut)
    }

    /// `batch` random windows of `block + 1` ids from `tokens`, starts
    /// uniform in `0 .. len − block − 1` (as `torch.randint` in the
    /// reference script): returns `(inputs, targets)`, each `batch · block`
    /// ids row-major, the targets being the inputs shifted by one.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `tokens` is shorter than `block + 2`
    /// or `block` is 0.
    pub fn sample_windows(
        tokens: &[usize],
        batch: usize,
        block: usize,
        rng: &mut impl Rng,
    ) -> Result<(Vec<usize>, Vec<usize>)> {
        if block == 0 || tokens.len() < block + 2 {
            return Err(Error::invalid(
                "CharText::sample_windows",
                format!(
                    "{} tokens are too few for windows of {block} + 1",
                    tokens.len()
                ),
            ));
        }
        let (mut x, mut y) = (
            Vec::with_capacity(batch * block),
            Vec::with_capacity(batch * block),
        );
        for _ in 0..batch {
            let s = rng.gen_range(0..tokens.len() - block - 1);
            x.extend_from_slice(&tokens[s..s + block]);
            y.extend_from_slice(&tokens[s + 1..s + block + 1]);
        }
        Ok((x, y))
    }

    /// Every non-overlapping window of `block + 1` ids that fits (window
    /// `j` starts at `j · block`; the last partial window is dropped), as
    /// `(inputs, targets)` pairs: the validation windows of the reference
    /// script.
    pub fn windows(tokens: &[usize], block: usize) -> Vec<(&[usize], &[usize])> {
        if block == 0 || tokens.is_empty() {
            return Vec::new();
        }
        let n = (tokens.len() - 1) / block;
        (0..n)
            .map(|j| {
                let s = j * block;
                (&tokens[s..s + block], &tokens[s + 1..s + block + 1])
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::CharText;
    use rand::SeedableRng;

    #[test]
    fn windows_and_batches() {
        let text = CharText::from_text("abcdefghij");
        let w = CharText::windows(text.ids(), 3);
        assert_eq!(w.len(), 3); // (10 − 1) / 3
        assert_eq!(text.decode(w[2].0), "ghi");
        assert_eq!(text.decode(w[2].1), "hij");
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for _ in 0..50 {
            let (x, y) = CharText::sample_windows(text.ids(), 1, 3, &mut rng).unwrap();
            // Targets follow inputs; a start of at most len − block − 2 = 5.
            assert_eq!(y[..2], x[1..]);
            assert!(x[0] <= 5);
        }
        assert!(CharText::sample_windows(text.ids(), 1, 9, &mut rng).is_err());
        assert!(text.encode("z").is_err());
    }
}

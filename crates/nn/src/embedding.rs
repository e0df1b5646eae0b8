//! [`Embedding`]: a table of learned vectors looked up by token id.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tapegrad_autograd::{Error as TapeError, Result as TapeResult, Tape, Var};
use tapegrad_tensor::{Element, Tensor};

use crate::init::Init;
use crate::module::Module;
use crate::param::Param;

/// A lookup table `weight: [num_embeddings, embedding_dim]`
/// (`torch.nn.Embedding`, same parameter name and layout). Row `i` is the
/// vector of token `i`; the table's gradient sums over every position that
/// read a row.
///
/// As a [`Module`], the input holds the ids as numbers (the way a `[B, T]`
/// batch of tokens travels through a model on the tape) and the output
/// appends `embedding_dim`; [`lookup`](Self::lookup) takes the ids as
/// `usize` directly.
///
/// ```
/// use tapegrad_autograd::Tape;
/// use tapegrad_nn::{Embedding, Module};
/// use tapegrad_tensor::Tensor;
/// let emb = Embedding::<f32>::new(10, 4, 0);
/// let tape = Tape::new();
/// let ids = tape.constant(Tensor::from_vec(vec![1.0, 2.0, 9.0, 1.0], &[2, 2])?);
/// assert_eq!(emb.forward(&tape, ids)?.shape().as_slice(), &[2, 2, 4]);
/// let err = emb.lookup(&tape, &[3, 10], &[2]).unwrap_err();
/// assert!(err.to_string().contains("token id 10 is beyond the vocabulary of 10"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Embedding<T: Element = f32> {
    weight: Param<T>,
}

impl<T: Element> Embedding<T> {
    /// A table drawn from `N(0, 1)` (PyTorch's default), seeded.
    pub fn new(num_embeddings: usize, embedding_dim: usize, seed: u64) -> Self {
        Self::with_rng(
            num_embeddings,
            embedding_dim,
            &mut StdRng::seed_from_u64(seed),
        )
    }

    /// A table drawn from `N(0, 1)` with `rng`.
    pub fn with_rng(num_embeddings: usize, embedding_dim: usize, rng: &mut impl Rng) -> Self {
        let init = Init::Normal {
            mean: 0.0,
            std: 1.0,
        };
        let w = init.tensor(
            &[num_embeddings, embedding_dim],
            embedding_dim,
            num_embeddings,
            rng,
        );
        Embedding {
            weight: Param::new("weight", w),
        }
    }

    /// A table with given values, `[num_embeddings, embedding_dim]`.
    ///
    /// # Errors
    /// If the table is not 2-d.
    pub fn from_tensor(weight: Tensor<T>) -> crate::Result<Self> {
        if weight.ndim() != 2 {
            return Err(crate::Error::invalid(
                "Embedding::from_tensor",
                format!(
                    "weight must be [num_embeddings, dim], got {:?}",
                    weight.dims()
                ),
            ));
        }
        Ok(Embedding {
            weight: Param::new("weight", weight),
        })
    }

    /// Number of rows (the vocabulary size).
    pub fn num_embeddings(&self) -> usize {
        self.weight.dims()[0]
    }

    /// Width of each vector.
    pub fn embedding_dim(&self) -> usize {
        self.weight.dims()[1]
    }

    /// The table, `[num_embeddings, embedding_dim]`.
    pub fn weight(&self) -> &Param<T> {
        &self.weight
    }

    /// The vectors of `ids` (laid out row-major in `ids_shape`), giving
    /// `[..ids_shape, embedding_dim]`.
    ///
    /// # Errors
    /// An error naming the layer, the id and the vocabulary size for an id
    /// `≥ num_embeddings`; one naming the shapes if `ids_shape` does not
    /// hold `ids.len()` elements.
    pub fn lookup<'t>(
        &self,
        tape: &'t Tape<T>,
        ids: &[usize],
        ids_shape: &[usize],
    ) -> TapeResult<Var<'t, T>> {
        if let Some(&bad) = ids.iter().find(|&&i| i >= self.num_embeddings()) {
            return Err(self.error(format!(
                "token id {bad} is beyond the vocabulary of {} (ids of shape {ids_shape:?})",
                self.num_embeddings()
            )));
        }
        self.weight.var(tape)?.embedding(ids, ids_shape)
    }

    fn error(&self, msg: String) -> TapeError {
        let path = self.weight.name().strip_suffix("weight").unwrap_or("");
        let path = path.strip_suffix('.').unwrap_or(path);
        let desc = format!(
            "Embedding({}, {})",
            self.num_embeddings(),
            self.embedding_dim()
        );
        TapeError::InvalidArgument {
            op: if path.is_empty() {
                desc
            } else {
                format!("layer {path} ({desc})")
            },
            msg,
        }
    }
}

/// The ids held in a tensor of whole numbers, or a message saying which
/// value is not one.
pub(crate) fn ids_of<T: Element>(x: &Tensor<T>) -> Result<Vec<usize>, String> {
    x.to_vec()
        .into_iter()
        .map(|v| {
            let f = v.to_f64();
            if f >= 0.0 && f.fract() == 0.0 && f < 9.0e15 {
                Ok(f as usize)
            } else {
                Err(format!(
                    "{f} is not a token id (ids must be whole numbers ≥ 0)"
                ))
            }
        })
        .collect()
}

impl<T: Element> Module<T> for Embedding<T> {
    fn forward<'t>(&self, tape: &'t Tape<T>, x: Var<'t, T>) -> TapeResult<Var<'t, T>> {
        let ids = ids_of(&x.value()).map_err(|m| self.error(m))?;
        self.lookup(tape, &ids, &x.shape())
    }

    fn parameters(&self) -> Vec<(String, &Param<T>)> {
        vec![("weight".to_string(), &self.weight)]
    }

    fn parameters_mut(&mut self) -> Vec<(String, &mut Param<T>)> {
        vec![("weight".to_string(), &mut self.weight)]
    }

    fn describe(&self) -> String {
        format!(
            "Embedding({}, {})",
            self.num_embeddings(),
            self.embedding_dim()
        )
    }
}

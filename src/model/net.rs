//! The dfdx side: one compile-time architecture per preset, behind the object-safe [`Net`]
//! trait so training code is written once. Parameters cross this boundary as flat `f32`
//! vectors in dfdx's visiting order (each Linear's weight, then its bias). Nothing outside
//! `model` may depend on these compile-time types: analysis reads the runtime view.

use super::fused::FusedNet;
use super::{Loss, Preset};
use crate::Result;
use dfdx::nn::builders::{FastGeLU, Linear, ReLU};
use dfdx::nn::{BuildOnDevice, DeviceBuildExt, Module, ModuleMut, TensorCollection, ZeroGrads};
use dfdx::prelude::{
    cross_entropy_with_logits_loss, mse_loss, RecursiveWalker, TensorOptions, TensorVisitor,
    ViewTensorMut, ViewTensorRef,
};
use dfdx::shapes::{Const, HasShape, Shape};
use dfdx::tensor::{AsArray, Cpu, Gradients, OwnedTape, Tensor, TensorFrom, Trace};
use dfdx::tensor_ops::Backward;
use serde::{Deserialize, Serialize};

// dfdx implements sequential modules for tuples of up to 6 elements, hence the nesting.
type H3<const I: usize, const W: usize, const O: usize, A> = (
    (Linear<I, W>, A),
    (Linear<W, W>, A),
    (Linear<W, W>, A),
    Linear<W, O>,
);
type H2<const I: usize, const W1: usize, const W2: usize, const O: usize> =
    (Linear<I, W1>, ReLU, Linear<W1, W2>, ReLU, Linear<W2, O>);

/// `products`: 4→32→32→32→2, ReLU.
pub type ProductsArch = H3<4, 32, 2, ReLU>;
/// `products-gelu`: 4→32→32→32→2, dfdx `FastGeLU`.
pub type ProductsGeluArch = H3<4, 32, 2, FastGeLU>;
/// `products64`: 4→64→64→64→2, ReLU (the benchmark model).
pub type Products64Arch = H3<4, 64, 2, ReLU>;
/// `products16`: 4→16→16→16→2, ReLU.
pub type Products16Arch = H3<4, 16, 2, ReLU>;
/// `products-shared`: 3→32→32→32→2, ReLU.
pub type ProductsSharedArch = H3<3, 32, 2, ReLU>;
/// `poly`: 1→32→32→1, ReLU.
pub type PolyArch = H2<1, 32, 32, 1>;
/// `digits`: 64→64→32→10, ReLU.
pub type DigitsArch = H2<64, 64, 32, 10>;
/// `mnist`: 784→128→64→10, ReLU.
pub type MnistArch = H2<784, 128, 64, 10>;

/// A trainable network, whatever its compile-time shape.
pub trait Net {
    /// All parameters, flat.
    fn params(&self) -> Vec<f32>;
    /// Overwrites all parameters.
    fn set_params(&mut self, p: &[f32]);
    /// Outputs for `n` rows of `x`.
    fn forward(&self, x: &[f32], n: usize) -> Vec<f32>;
    /// Forward and backward on one batch: the mean loss, the outputs and the flat gradient.
    fn loss_and_grad(&mut self, batch: Batch<'_>, loss: Loss) -> (f32, Vec<f32>, Vec<f32>);
}

/// One minibatch: `n` rows of inputs `x` and targets `y`, row-major.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    pub x: &'a [f32],
    pub y: &'a [f32],
    pub n: usize,
}

/// Which code computes training's forward and backward passes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    /// dfdx's modules and tape (the reference).
    Dfdx,
    /// [`FusedNet`]: the same function and gradient with faer's small matrix products on
    /// reused buffers (the default).
    #[default]
    Fused,
}

impl Engine {
    /// The engine of a stored run or zoo that names none: those came from before engines
    /// existed, when dfdx trained everything (so a resume continues on the engine it began on).
    pub fn legacy() -> Engine {
        Engine::Dfdx
    }

    pub fn name(self) -> &'static str {
        match self {
            Engine::Dfdx => "dfdx",
            Engine::Fused => "fused",
        }
    }
}

/// Builds a preset's network for `engine`, initialised by dfdx from `seed` (both engines start
/// from the same weights).
pub fn build_with(preset: Preset, seed: u64, engine: Engine) -> Result<Box<dyn Net>> {
    let net = build(preset, seed);
    match engine {
        Engine::Dfdx => Ok(net),
        Engine::Fused => Ok(Box::new(FusedNet::new(&preset.arch(), net.params())?)),
    }
}

/// Builds a preset's network, initialised by dfdx from `seed`.
pub fn build(preset: Preset, seed: u64) -> Box<dyn Net> {
    fn b<A, const I: usize, const O: usize>(seed: u64) -> Box<dyn Net>
    where
        A: BuildOnDevice<Cpu, f32> + 'static,
        DfdxNet<A, I, O>: Net,
    {
        let dev = Cpu::seed_from_u64(seed);
        let model = dev.build_module::<A, f32>();
        Box::new(DfdxNet::<A, I, O> {
            dev,
            model,
            grads: None,
        })
    }
    match preset {
        Preset::Products | Preset::ProductsPlanted => b::<ProductsArch, 4, 2>(seed),
        Preset::ProductsGelu => b::<ProductsGeluArch, 4, 2>(seed),
        Preset::Products64 => b::<Products64Arch, 4, 2>(seed),
        Preset::Products16 => b::<Products16Arch, 4, 2>(seed),
        Preset::ProductsShared => b::<ProductsSharedArch, 3, 2>(seed),
        Preset::Poly => b::<PolyArch, 1, 1>(seed),
        Preset::Digits => b::<DigitsArch, 64, 10>(seed),
        Preset::Mnist => b::<MnistArch, 784, 10>(seed),
    }
}

/// A dfdx module with its device and a reusable gradient buffer.
pub struct DfdxNet<A: BuildOnDevice<Cpu, f32>, const I: usize, const O: usize> {
    dev: Cpu,
    model: A::Built,
    grads: Option<Gradients<f32, Cpu>>,
}

type In<const I: usize, T = dfdx::tensor::NoneTape> = Tensor<(usize, Const<I>), f32, Cpu, T>;
type Tape = OwnedTape<f32, Cpu>;

impl<A, const I: usize, const O: usize> Net for DfdxNet<A, I, O>
where
    A: BuildOnDevice<Cpu, f32>,
    A::Built: TensorCollection<f32, Cpu>
        + Module<In<I>, Output = In<O>>
        + ModuleMut<In<I, Tape>, Output = In<O, Tape>>
        + ZeroGrads<f32, Cpu>,
{
    fn params(&self) -> Vec<f32> {
        let mut v = Collect {
            out: Vec::new(),
            grads: None,
        };
        A::Built::iter_tensors(&mut RecursiveWalker {
            m: &self.model,
            f: &mut v,
        })
        .expect("visit");
        v.out
    }

    fn set_params(&mut self, p: &[f32]) {
        let mut v = Write { src: p, off: 0 };
        A::Built::iter_tensors(&mut RecursiveWalker {
            m: &mut self.model,
            f: &mut v,
        })
        .expect("visit");
        assert_eq!(v.off, p.len(), "parameter count");
    }

    fn forward(&self, x: &[f32], n: usize) -> Vec<f32> {
        let t: In<I> = self.dev.tensor((x.to_vec(), (n, Const::<I>)));
        self.model.forward(t).as_vec()
    }

    fn loss_and_grad(&mut self, b: Batch<'_>, loss: Loss) -> (f32, Vec<f32>, Vec<f32>) {
        let Batch { x, y, n } = b;
        let mut grads = self
            .grads
            .take()
            .unwrap_or_else(|| self.model.alloc_grads());
        self.model.zero_grads(&mut grads);
        let t: In<I> = self.dev.tensor((x.to_vec(), (n, Const::<I>)));
        let target: In<O> = self.dev.tensor((y.to_vec(), (n, Const::<O>)));
        let out = self.model.forward_mut(t.traced(grads));
        let outputs = out.as_vec();
        let l = match loss {
            Loss::Mse => mse_loss(out, target),
            Loss::CrossEntropy => cross_entropy_with_logits_loss(out, target),
        };
        let value = l.array();
        let grads = l.backward();
        let mut v = Collect {
            out: Vec::new(),
            grads: Some(&grads),
        };
        A::Built::iter_tensors(&mut RecursiveWalker {
            m: &self.model,
            f: &mut v,
        })
        .expect("visit");
        let g = v.out;
        self.grads = Some(grads);
        (value, outputs, g)
    }
}

/// Implements dfdx's `TensorVisitor` for a visitor type: its associated types and `visit`,
/// whose `body` sees the visitor as `$s` and each tensor as `$t` (of type `$tensor`).
macro_rules! visitor {
    ($ty:ty, $viewer:ty, |$s:ident, $t:ident: $tensor:ty| $body:block) => {
        impl TensorVisitor<f32, Cpu> for $ty {
            type Viewer = $viewer;
            type Err = <Cpu as dfdx::tensor::HasErr>::Err;
            type E2 = f32;
            type D2 = Cpu;

            fn visit<S: Shape>(
                &mut self,
                _: TensorOptions<S, f32, Cpu>,
                $t: $tensor,
            ) -> Result<Option<Tensor<S, f32, Cpu>>, Self::Err> {
                let $s = self;
                $body
                Ok(None)
            }
        }
    };
}

/// Visits tensors in order, appending their values (or their gradients) to `out`.
struct Collect<'g> {
    out: Vec<f32>,
    grads: Option<&'g Gradients<f32, Cpu>>,
}

visitor!(Collect<'_>, ViewTensorRef, |v, t: &Tensor<S, f32, Cpu>| {
    match v.grads {
        None => v.out.extend(t.as_vec()),
        Some(g) => v.out.extend(g.get(t).as_vec()),
    }
});

/// Visits tensors in order, overwriting each from consecutive values of `src`.
struct Write<'a> {
    src: &'a [f32],
    off: usize,
}

visitor!(
    Write<'_>,
    ViewTensorMut,
    |v, t: &mut Tensor<S, f32, Cpu>| {
        let k = t.shape().num_elements();
        t.copy_from(&v.src[v.off..v.off + k]);
        v.off += k;
    }
);

crate::choices!(Engine {
    Dfdx => "dfdx": "dfdx's modules and tape (the reference)",
    Fused => "fused": "the same function and gradient on faer's small products (faster)",
});

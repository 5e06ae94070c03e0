//! This CPU's peak FP32 throughput per core, measured rather than looked up: the clock from a
//! chain of dependent integer multiplies (three cycles each), and the FMA rate from independent
//! accumulators in the widest vector unit the CPU has (AVX-512 or AVX2), which gives the
//! number of FMA units. Used by `circuitscope bench peers` to say what fraction of the peak a
//! workload reaches; it measures, it never changes how anything else runs.

use serde_json::{json, Value};
use std::time::Instant;

/// What was measured on one core.
#[derive(Debug, Clone)]
pub struct Peak {
    /// Cycles per second of a dependent multiply chain.
    pub clock_hz: f64,
    /// f32 lanes of the vector unit measured (16 for AVX-512, 8 for AVX2, 1 without).
    pub lanes: usize,
    /// Vector FMAs retired per cycle (the FMA units a core has).
    pub fma_per_cycle: f64,
    /// The FLOP/s the FMA loop itself reached.
    pub measured_flops: f64,
}

impl Peak {
    /// Peak f32 FLOP/s of one core: lanes x 2 (multiply and add) x FMA units x clock, with the
    /// FMA units rounded to a whole number.
    pub fn per_core_flops(&self) -> f64 {
        self.lanes as f64 * 2.0 * self.fma_per_cycle.round().max(1.0) * self.clock_hz
    }

    pub fn to_json(&self) -> Value {
        json!({"clock_hz": self.clock_hz, "lanes": self.lanes, "fma_per_cycle": self.fma_per_cycle,
               "measured_flops": self.measured_flops, "per_core_peak_flops": self.per_core_flops()})
    }
}

impl std::fmt::Display for Peak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "peak FP32 per core: {} lanes x 2 x {:.0} FMA units ({:.2} measured) x {:.2} GHz (measured) = {:.1} GFLOP/s (the FMA loop reached {:.1})",
            self.lanes,
            self.fma_per_cycle.round().max(1.0),
            self.fma_per_cycle,
            self.clock_hz / 1e9,
            self.per_core_flops() / 1e9,
            self.measured_flops / 1e9
        )
    }
}

/// Best of a few tries of `f`, which returns (work units, seconds).
fn best(f: impl Fn() -> (f64, f64)) -> f64 {
    (0..5)
        .map(|_| {
            let (units, s) = f();
            units / s
        })
        .fold(0.0, f64::max)
}

#[cfg(target_arch = "x86_64")]
fn clock() -> f64 {
    best(|| {
        let n: u64 = 20_000_000;
        let t0 = Instant::now();
        let mut x: u64 = 3;
        // 10 dependent 64-bit multiplies per iteration (3 cycles each on every x86-64 core
        // since 2008; an add chain would not do: recent cores fold immediate adds at rename).
        unsafe {
            std::arch::asm!(
                "2:",
                "imul {x}, {x}", "imul {x}, {x}", "imul {x}, {x}", "imul {x}, {x}", "imul {x}, {x}",
                "imul {x}, {x}", "imul {x}, {x}", "imul {x}, {x}", "imul {x}, {x}", "imul {x}, {x}",
                "dec {n}",
                "jnz 2b",
                x = inout(reg) x,
                n = inout(reg) n => _,
                options(nomem, nostack),
            );
        }
        std::hint::black_box(x);
        ((n * 30) as f64, t0.elapsed().as_secs_f64())
    })
}

#[cfg(not(target_arch = "x86_64"))]
fn clock() -> f64 {
    f64::NAN
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fma512(iters: usize) -> f32 {
    use std::arch::x86_64::*;
    let a = _mm512_set1_ps(0.999_999);
    let b = _mm512_set1_ps(1e-7);
    let mut acc = [_mm512_set1_ps(1.0); 12];
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = _mm512_fmadd_ps(*v, a, b);
        }
    }
    let mut s = _mm512_setzero_ps();
    for v in acc {
        s = _mm512_add_ps(s, v);
    }
    _mm512_reduce_add_ps(s)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma256(iters: usize) -> f32 {
    use std::arch::x86_64::*;
    let a = _mm256_set1_ps(0.999_999);
    let b = _mm256_set1_ps(1e-7);
    let mut acc = [_mm256_set1_ps(1.0); 12];
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = _mm256_fmadd_ps(*v, a, b);
        }
    }
    let mut out = [0.0f32; 8];
    let mut s = _mm256_setzero_ps();
    for v in acc {
        s = _mm256_add_ps(s, v);
    }
    _mm256_storeu_ps(out.as_mut_ptr(), s);
    out.iter().sum()
}

/// Measures the clock and the FMA rate of the core this thread runs on (about a second).
pub fn measure() -> Peak {
    measure_with(20_000_000)
}

/// [`measure`] with `iters` rounds of 12 vector FMAs per try.
pub fn measure_with(iters: usize) -> Peak {
    let clock_hz = clock();
    #[cfg(target_arch = "x86_64")]
    let (lanes, fmas) = if is_x86_feature_detected!("avx512f") {
        (
            16,
            best(|| {
                let t0 = Instant::now();
                // SAFETY: avx512f was detected above.
                std::hint::black_box(unsafe { fma512(iters) });
                ((iters * 12) as f64, t0.elapsed().as_secs_f64())
            }),
        )
    } else if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        (
            8,
            best(|| {
                let t0 = Instant::now();
                // SAFETY: avx2 and fma were detected above.
                std::hint::black_box(unsafe { fma256(iters) });
                ((iters * 12) as f64, t0.elapsed().as_secs_f64())
            }),
        )
    } else {
        (1, f64::NAN)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let (lanes, fmas) = (1usize, f64::NAN);
    Peak {
        clock_hz,
        lanes,
        fma_per_cycle: fmas / clock_hz,
        measured_flops: fmas * lanes as f64 * 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_and_vector_width_are_plausible() {
        let p = measure_with(200_000);
        if cfg!(target_arch = "x86_64") {
            // A multiply chain that ran faster than 8 GHz or slower than 0.3 GHz was not the
            // 3-cycle dependent chain it is meant to be.
            assert!(p.clock_hz > 0.3e9 && p.clock_hz < 8e9, "{p}");
            assert!([1, 8, 16].contains(&p.lanes), "{p}");
            assert!(
                p.per_core_flops() >= p.lanes as f64 * 2.0 * p.clock_hz,
                "{p}"
            );
        }
    }
}

//! Dual numbers `v + d·ε` with `ε² = 0`: carrying `d` through every operation is forward-mode
//! differentiation.

/// A dual number: a value and its tangent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dual {
    pub v: f64,
    pub d: f64,
}

impl Dual {
    pub fn new(v: f64, d: f64) -> Dual {
        Dual { v, d }
    }
    pub fn constant(v: f64) -> Dual {
        Dual { v, d: 0.0 }
    }
    pub fn powi(self, k: i32) -> Dual {
        Dual::new(self.v.powi(k), k as f64 * self.v.powi(k - 1) * self.d)
    }
    pub fn sin(self) -> Dual {
        Dual::new(self.v.sin(), self.v.cos() * self.d)
    }
    pub fn cos(self) -> Dual {
        Dual::new(self.v.cos(), -self.v.sin() * self.d)
    }
    pub fn exp(self) -> Dual {
        let e = self.v.exp();
        Dual::new(e, e * self.d)
    }
    pub fn ln(self) -> Dual {
        Dual::new(self.v.ln(), self.d / self.v)
    }
    pub fn tanh(self) -> Dual {
        let t = self.v.tanh();
        Dual::new(t, (1.0 - t * t) * self.d)
    }
    pub fn erf(self) -> Dual {
        let d = std::f64::consts::FRAC_2_SQRT_PI * (-self.v * self.v).exp();
        Dual::new(libm::erf(self.v), self.d * d)
    }
    pub fn relu(self) -> Dual {
        if self.v > 0.0 {
            self
        } else {
            Dual::new(0.0, 0.0)
        }
    }
}

impl std::ops::Add for Dual {
    type Output = Dual;
    fn add(self, o: Dual) -> Dual {
        Dual::new(self.v + o.v, self.d + o.d)
    }
}
impl std::ops::Sub for Dual {
    type Output = Dual;
    fn sub(self, o: Dual) -> Dual {
        Dual::new(self.v - o.v, self.d - o.d)
    }
}
impl std::ops::Mul for Dual {
    type Output = Dual;
    fn mul(self, o: Dual) -> Dual {
        Dual::new(self.v * o.v, self.d * o.v + self.v * o.d)
    }
}
impl std::ops::Div for Dual {
    type Output = Dual;
    fn div(self, o: Dual) -> Dual {
        Dual::new(self.v / o.v, (self.d * o.v - self.v * o.d) / (o.v * o.v))
    }
}
impl std::ops::Neg for Dual {
    type Output = Dual;
    fn neg(self) -> Dual {
        Dual::new(-self.v, -self.d)
    }
}

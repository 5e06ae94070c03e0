//! Options checked once, as linfa's `ParamGuard` does: a [`Valid<T>`] can only be made by the
//! type's own `check`, so a stage that takes `&Valid<T>` never re-checks its options and bad
//! options fail before any work starts. A parameter error is [`crate::Error::Invalid`]; what a
//! stage finds wrong with its data at run time is [`crate::Error::Data`].

use std::ops::Deref;

/// Options of type `T` that passed `T`'s checks.
#[derive(Debug, Clone, PartialEq)]
pub struct Valid<T>(T);

impl<T> Valid<T> {
    /// Wraps options that the caller has just checked. Only a type's `check` calls this.
    pub(crate) fn checked(t: T) -> Valid<T> {
        Valid(t)
    }

    /// The options themselves.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Valid<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// A closed set of named options — a preset, an ablation, a node kind — with the name a
/// user types and one line of help for each: what a command line offers as possible values,
/// without the library knowing about any command line.
pub trait Choice: Copy + PartialEq + 'static {
    /// Every option, in the order help lists them.
    const ALL: &'static [Self];
    /// The name a user types.
    fn key(self) -> &'static str;
    /// One line of help.
    fn help(self) -> &'static str;

    /// The option called `key`, if there is one.
    fn from_key(key: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.key() == key)
    }
}

/// Implements [`Choice`] for an enum: `choices!(Ablation { Zero => "zero": "help", ... })`.
#[macro_export]
macro_rules! choices {
    ($t:ty { $($v:ident => $key:literal : $help:literal),* $(,)? }) => {
        impl $crate::params::Choice for $t {
            const ALL: &'static [Self] = &[$(Self::$v),*];
            fn key(self) -> &'static str {
                match self { $(Self::$v => $key),* }
            }
            fn help(self) -> &'static str {
                match self { $(Self::$v => $help),* }
            }
        }
    };
}

//! Command-line values for the library's [`Choice`] enums: possible values and their help
//! are generated from the enum, and a wrong value gets clap's own message listing them.

use circuitscope::params::Choice;
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use std::marker::PhantomData;

/// Parses one of T's keys into a T.
#[derive(Clone)]
pub struct ChoiceParser<T>(PhantomData<T>);

/// The value parser of a flag taking a T.
pub fn choice<T: Choice + Send + Sync>() -> ChoiceParser<T> {
    ChoiceParser(PhantomData)
}

fn values<T: Choice>() -> Vec<PossibleValue> {
    T::ALL
        .iter()
        .map(|c| PossibleValue::new(c.key()).help(c.help()))
        .collect()
}

impl<T: Choice + Send + Sync> TypedValueParser for ChoiceParser<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<T, clap::Error> {
        let key = PossibleValuesParser::new(values::<T>()).parse_ref(cmd, arg, value)?;
        Ok(T::from_key(&key).expect("a possible value is a key"))
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(values::<T>().into_iter()))
    }
}

/// The key of a choice, for default_value.
pub fn key<T: Choice>(c: T) -> &'static str {
    c.key()
}

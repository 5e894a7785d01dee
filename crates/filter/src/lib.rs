//! Which exchanges to keep.
//!
//! Two front ends share one set of fields and patterns ([`Field`],
//! [`Pattern`]):
//!
//! - a [`Filter`] expression, one line for the command line
//!   (`tapwire snapshot create --filter 'direction=inbound,path~/api/**'`);
//! - [`Rules`], an ordered YAML rule list for the pipeline (built-ins
//!   `standard` and `none`, or a file), where the first matching rule keeps,
//!   drops or samples an exchange. `docs/filter.md` describes both.

mod expr;
mod field;
mod rules;

pub use expr::{Filter, FilterError};
pub use field::{Field, Pattern, PatternError};
pub use rules::{Action, Decision, Rule, Rules, RulesError, STANDARD_RULES};

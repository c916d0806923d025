//! Task priority, shared by the payloads and the backend's API.
//!
//! On the wire it is a lower-case string; parsing from text ([`str::parse`]) also accepts any
//! letter case, because it serves query strings and assistant tool arguments, not events.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// How urgent a task is; ordered `Low < Medium < High < Urgent`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// `low`
    Low,
    /// `medium`, the default.
    #[default]
    Medium,
    /// `high`
    High,
    /// `urgent`
    Urgent,
}

impl Priority {
    /// Every priority, lowest first.
    pub const ALL: [Priority; 4] = [Self::Low, Self::Medium, Self::High, Self::Urgent];

    /// The wire name: `low`, `medium`, `high` or `urgent`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Urgent => "urgent",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Priority {
    type Err = ParsePriorityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| ParsePriorityError {
                input: s.to_owned(),
            })
    }
}

/// Written by hand rather than derived: the derive turns the variants' doc comments into a
/// `oneOf` of `const`s, where a plain string `enum` is what code generators in other languages
/// map to an enum type.
impl JsonSchema for Priority {
    fn schema_name() -> Cow<'static, str> {
        "Priority".into()
    }

    fn schema_id() -> Cow<'static, str> {
        concat!(module_path!(), "::Priority").into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let names: Vec<&str> = Self::ALL.iter().map(|p| p.as_str()).collect();
        json_schema!({
            "description": "How urgent a task is, lowest first.",
            "type": "string",
            "enum": names,
            "default": Self::default().as_str(),
        })
    }
}

/// A string that names no [`Priority`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid priority {input:?}: expected one of low, medium, high, urgent")]
pub struct ParsePriorityError {
    input: String,
}

impl ParsePriorityError {
    /// The rejected text.
    pub fn input(&self) -> &str {
        &self.input
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_wire_name_and_displays_it_back() {
        for p in Priority::ALL {
            assert_eq!(p.to_string().parse::<Priority>(), Ok(p));
        }
        assert_eq!("low".parse(), Ok(Priority::Low));
        assert_eq!("medium".parse(), Ok(Priority::Medium));
        assert_eq!("high".parse(), Ok(Priority::High));
        assert_eq!("urgent".parse(), Ok(Priority::Urgent));
    }

    #[test]
    fn parsing_ignores_letter_case() {
        assert_eq!("HIGH".parse(), Ok(Priority::High));
        assert_eq!("Urgent".parse(), Ok(Priority::Urgent));
    }

    #[test]
    fn parse_error_names_input_and_choices() {
        let err = "critical".parse::<Priority>().unwrap_err();
        assert_eq!(err.input(), "critical");
        assert_eq!(
            err.to_string(),
            r#"invalid priority "critical": expected one of low, medium, high, urgent"#
        );
        assert!(" low".parse::<Priority>().is_err());
        assert!("".parse::<Priority>().is_err());
    }

    #[test]
    fn default_is_medium_and_order_follows_urgency() {
        assert_eq!(Priority::default(), Priority::Medium);
        assert!(Priority::Low < Priority::Medium);
        assert!(Priority::High < Priority::Urgent);
    }

    #[test]
    fn serde_uses_lower_case_strings_only() {
        for p in Priority::ALL {
            let json = serde_json::to_value(p).unwrap();
            assert_eq!(json, serde_json::Value::from(p.as_str()));
            assert_eq!(serde_json::from_value::<Priority>(json).unwrap(), p);
        }
        assert!(serde_json::from_str::<Priority>(r#""High""#).is_err());
    }

    #[test]
    fn schema_is_a_string_enum_of_the_wire_names() {
        let schema = schemars::schema_for!(Priority);
        assert_eq!(schema.get("type"), Some(&serde_json::json!("string")));
        assert_eq!(
            schema.get("enum"),
            Some(&serde_json::json!(["low", "medium", "high", "urgent"]))
        );
        assert_eq!(schema.get("default"), Some(&serde_json::json!("medium")));
    }
}

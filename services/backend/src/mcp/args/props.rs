//! Property tests of tool-argument parsing (issue 12, generated bad input): any JSON value as
//! the arguments of any tool is read into its argument type or refused with an
//! [`InvalidArgument`] (a `VALIDATION_ERROR` result) — never a protocol error, never a panic —
//! and a refusal that names a field names it in its message too.

#![allow(clippy::unwrap_used)]

use std::fmt::Debug;

use proptest::prelude::*;
use serde_json::Value;

use super::*;

#[path = "../../../tests/support/tool_args.rs"]
mod tool_args;

/// Every argument name of every tool, plus the original system's `user_id`.
fn names() -> Vec<&'static str> {
    let mut names: Vec<&str> = tool_args::TOOL_ARGS
        .iter()
        .flat_map(|(_, args)| args.iter().copied())
        .chain(["user_id"])
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

fn leaf() -> impl Strategy<Value = Value> {
    let words = prop::sample::select(vec![
        "",
        " ",
        "HIGH",
        "Pending",
        "due",
        "DESC",
        "42",
        "-1",
        "0",
        "00000000-0000-0000-0000-000000000000",
        "2030-01-31T09:00:00+01:00",
        "2030-01-31T09:00",
        "+262142-12-31T23:59:59Z",
        "FREQ=DAILY",
        "#FFAA00",
    ])
    .prop_map(Value::from);
    crate::json_fixtures::json_leaf(
        true,
        vec![any::<String>().prop_map(Value::from).boxed(), words.boxed()],
    )
}

fn any_json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Tool arguments: objects of the tools' argument names with any values, or any JSON at all.
fn arguments() -> impl Strategy<Value = Value> {
    let name = prop_oneof![
        4 => prop::sample::select(names()).prop_map(str::to_owned),
        1 => "[a-z_]{1,8}",
    ];
    prop_oneof![
        4 => prop::collection::btree_map(name, any_json(), 0..8)
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        1 => any_json(),
    ]
}

/// Reads `value` as `T`'s arguments: the deserialisation itself must succeed (a failure is
/// kept for the tool to report), and a refusal carries a message naming its field.
fn read<T: DeserializeOwned + Debug>(value: &Value) -> Result<(), TestCaseError> {
    let input = serde_json::from_value::<Input<T>>(value.clone());
    prop_assert!(input.is_ok(), "protocol-level error for {}", value);
    if let Err(err) = input.unwrap().parse() {
        prop_assert!(!err.message.is_empty());
        if let Some(field) = &err.field {
            prop_assert!(err.message.contains(field.as_str()), "{:?}", err);
        }
    }
    Ok(())
}

/// [`read`] for each argument type, returning at the first failure.
macro_rules! read_each {
    ($value:expr; $($args:ty),+ $(,)?) => {
        $(read::<$args>($value)?;)+
    };
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Every argument type of the 18 tools, on the same generated arguments.
    #[test]
    fn any_arguments_parse_or_are_a_validation_error(value in arguments()) {
        read_each!(&value;
            AddTaskArgs, ListTasksArgs, TaskIdArgs, UpdateTaskArgs, SearchTasksArgs, TaskTagArgs,
            CreateCategoryArgs, UpdateCategoryArgs, CategoryIdArgs, CreateTagArgs, UpdateTagArgs,
            TagIdArgs);
        let input = serde_json::from_value::<Input<SetReminderArgs>>(value).unwrap();
        if let Ok(args) = input.parse() {
            // Exactly one way of giving the reminder, or a validation error.
            let _ = args.into_spec();
        }
    }

    /// Ids: a UUID, a positive original id, or a message; never a panic.
    #[test]
    fn any_value_is_an_id_or_a_message(value in any_json()) {
        match IdArg::from_value(&value) {
            Ok(IdArg::Legacy(n)) => prop_assert!(n > 0),
            Ok(IdArg::Ours(_)) => {}
            Err(message) => prop_assert!(message.contains("not an id")),
        }
    }
}

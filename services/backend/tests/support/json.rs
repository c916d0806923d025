//! JSON leaves for the property tests' generated values, shared by the integration suites and
//! the unit properties (`src/auth/props.rs` and `src/mcp/args/props.rs` include this file by
//! path), so every generator draws scalars alike.

use proptest::prelude::*;
use proptest::strategy::Union;
use serde_json::Value;

/// `null`, booleans and `i64`s; with `wide_numbers` also `u64`s beyond `i64` and finite
/// floats; then each of `strings`. Every arm is equally likely, as in `prop_oneof!`.
pub(crate) fn json_leaf(
    wide_numbers: bool,
    strings: Vec<BoxedStrategy<Value>>,
) -> BoxedStrategy<Value> {
    let mut arms = vec![
        Just(Value::Null).boxed(),
        any::<bool>().prop_map(Value::from).boxed(),
        any::<i64>().prop_map(Value::from).boxed(),
    ];
    if wide_numbers {
        arms.push(any::<u64>().prop_map(Value::from).boxed());
        arms.push(
            any::<f64>()
                .prop_filter_map("finite", |f| {
                    serde_json::Number::from_f64(f).map(Value::Number)
                })
                .boxed(),
        );
    }
    arms.extend(strings);
    Union::new(arms).boxed()
}

//! Router tests: one file per concern, each test named after the rule it pins.

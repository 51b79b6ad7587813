//! A JSON Schema of the config files, for account managers' editors:
//! completion, hover text and checks as they type (`bidder schema`).
//!
//! It is generated from the types the loader reads: every struct of `raw`
//! is declared through its `mappings!` macro, which derives serde's
//! `Deserialize` and, from the same tokens, a [`Mapping`] with the keys in
//! order, whether each is required, its type's [`Describe`] and its doc
//! comment. A key added to a struct is in the schema, and a struct cannot
//! have a key the schema lacks.
//!
//! What the schema holds, and what it leaves to the validator:
//! - keys: exactly the struct's (`additionalProperties: false`, as the
//!   loader's `deny_unknown_fields`), required unless serde reads a missing
//!   key as absent or empty (`Option`, `List`, `#[serde(default)]`);
//! - values: what the parser accepts. Text is any single value (`id: 123`
//!   reads as "123"), whole numbers are integers, amounts are numbers or
//!   text, lists are lists or nothing (`key:` with no value), and every
//!   optional key may be left empty;
//! - `enum`s where the validator accepts a fixed list (`#[one_of]`), taken
//!   from the constants it parses with, and the pattern of currency codes.
//!
//! Ranges, dates, URLs and references between ids stay with `bidder
//! validate`, which says where and why.
//!
//! The dialect is draft-07: yaml-language-server (the VS Code YAML
//! extension, and other editors through it) and JetBrains IDEs support it
//! fully, where their support of 2019-09 and 2020-12 is partial. Mappings
//! are under `definitions`, draft-07's name for `$defs`.

use serde_json::{json, Map, Value};
use serde_saphyr::Spanned;

use crate::raw::{Given, List, MoneyText, RateMap, RawFile};

/// The schema's dialect.
const DRAFT_07: &str = "http://json-schema.org/draft-07/schema#";

/// Definitions collected while describing, by name.
pub(crate) type Defs = Map<String, Value>;

/// A type's schema.
pub(crate) trait Describe {
    /// Whether serde reads a missing key of this type as absent or empty.
    const MAY_BE_MISSING: bool = false;

    /// The schema of a value; mappings add their definition to `defs` and
    /// answer a `$ref` to it.
    fn describe(defs: &mut Defs) -> Value;
}

/// One mapping of the YAML: a struct of `raw`.
pub(crate) struct Mapping {
    /// The struct's name, which gives the definition's: `RawLineItem` is
    /// `line_item`.
    pub(crate) rust_name: &'static str,
    /// Its name in messages, like "line item".
    pub(crate) name: &'static str,
    /// Its doc comment, line by line.
    pub(crate) doc: &'static [&'static str],
    /// Its keys, in declaration order (serde's order too).
    pub(crate) keys: &'static [Key],
}

/// One key of a mapping.
pub(crate) struct Key {
    pub(crate) name: &'static str,
    pub(crate) doc: &'static [&'static str],
    pub(crate) required: bool,
    pub(crate) describe: fn(&mut Defs) -> Value,
    /// The values the validator accepts, when it accepts a fixed list.
    pub(crate) one_of: Option<fn() -> Vec<&'static str>>,
}

impl Mapping {
    /// The name of its definition, `#/definitions/{name}`.
    pub(crate) fn definition(&self) -> String {
        let name = self.rust_name.strip_prefix("Raw").unwrap_or(self.rust_name);
        let mut snake = String::with_capacity(name.len() + 4);
        for (i, c) in name.chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                snake.push('_');
            }
            snake.push(c.to_ascii_lowercase());
        }
        snake
    }

    /// A `$ref` to its definition, which is added on first use.
    pub(crate) fn reference(&self, defs: &mut Defs) -> Value {
        let name = self.definition();
        if !defs.contains_key(&name) {
            // Holds the place while the keys are described.
            defs.insert(name.clone(), Value::Null);
            let object = self.object(defs, |_| true);
            defs.insert(name.clone(), Value::Object(object));
        }
        json!({ "$ref": format!("#/definitions/{name}") })
    }

    /// An object of the keys `keep` keeps.
    fn object(&self, defs: &mut Defs, keep: impl Fn(&str) -> bool) -> Map<String, Value> {
        let mut object = Map::new();
        if let Some(text) = description(self.doc) {
            object.insert("description".into(), text.into());
        }
        object.insert("type".into(), "object".into());
        let mut properties = Map::new();
        let mut required = Vec::new();
        for key in self.keys.iter().filter(|k| keep(k.name)) {
            properties.insert(key.name.into(), key.schema(defs));
            if key.required {
                required.push(Value::from(key.name));
            }
        }
        object.insert("properties".into(), properties.into());
        if !required.is_empty() {
            object.insert("required".into(), required.into());
        }
        object.insert("additionalProperties".into(), false.into());
        object
    }
}

impl Key {
    fn schema(&self, defs: &mut Defs) -> Value {
        let mut schema = (self.describe)(defs);
        if let Some(values) = self.one_of {
            restrict(&mut schema, &values(), self.name);
        }
        if let Some(text) = description(self.doc) {
            // Draft-07 ignores the siblings of a `$ref`.
            if schema.get("$ref").is_some() {
                schema = json!({ "allOf": [schema] });
            }
            schema["description"] = text.into();
        }
        schema
    }
}

/// Doc comment lines as one text: lines joined, paragraphs kept.
fn description(doc: &[&str]) -> Option<String> {
    let mut text = String::new();
    for line in doc.iter().map(|l| l.trim()) {
        if line.is_empty() {
            text.push_str("\n\n");
        } else {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push(' ');
            }
            text.push_str(line);
        }
    }
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// Restricts a text key, or the items of a list of text, to `values`.
fn restrict(schema: &mut Value, values: &[&str], key: &str) {
    let types = types(schema);
    if types.contains(&"array") {
        restrict(&mut schema["items"], values, key);
        return;
    }
    assert!(
        types.contains(&"string"),
        "#[one_of] on {key}: only text and lists of text have a fixed list of values"
    );
    let mut allowed: Vec<Value> = values.iter().map(|v| Value::from(*v)).collect();
    if types.contains(&"null") {
        allowed.push(Value::Null);
    }
    *schema = json!({ "enum": allowed });
}

fn types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// The schema, or `null` besides it.
fn nullable(mut schema: Value) -> Value {
    let mut types: Vec<String> = types(&schema).into_iter().map(str::to_owned).collect();
    if types.is_empty() {
        return json!({ "anyOf": [schema, { "type": "null" }] });
    }
    if !types.iter().any(|t| t == "null") {
        types.push("null".to_owned());
    }
    schema["type"] = types.into();
    schema
}

/// The schema without `null`: the top-level key that says what a file is
/// must have a value.
fn non_null(schema: Value) -> Value {
    let Value::Object(mut object) = schema else {
        return schema;
    };
    if let Some(Value::Array(branches)) = object.remove("anyOf") {
        let mut rest: Vec<Value> = branches
            .into_iter()
            .filter(|b| *b != json!({ "type": "null" }))
            .collect();
        if rest.len() == 1 {
            object.insert("allOf".into(), vec![rest.remove(0)].into());
        } else {
            object.insert("anyOf".into(), rest.into());
        }
    }
    if let Some(Value::Array(types)) = object.get_mut("type") {
        types.retain(|t| t != "null");
    }
    if let Some(Value::Array(values)) = object.get_mut("enum") {
        values.retain(|v| !v.is_null());
    }
    Value::Object(object)
}

impl Describe for String {
    fn describe(_: &mut Defs) -> Value {
        // The parser reads any single value as its text.
        json!({ "type": ["string", "number", "boolean"] })
    }
}

impl Describe for i64 {
    fn describe(_: &mut Defs) -> Value {
        json!({ "type": "integer" })
    }
}

impl Describe for bool {
    fn describe(_: &mut Defs) -> Value {
        json!({ "type": "boolean" })
    }
}

impl Describe for MoneyText {
    fn describe(_: &mut Defs) -> Value {
        // A plain decimal, written as a number or quoted.
        json!({ "type": ["number", "string"] })
    }
}

impl<T: Describe> Describe for Spanned<T> {
    fn describe(defs: &mut Defs) -> Value {
        T::describe(defs)
    }
}

impl<T: Describe> Describe for Given<T> {
    const MAY_BE_MISSING: bool = true;

    fn describe(defs: &mut Defs) -> Value {
        T::describe(defs)
    }
}

impl<T: Describe> Describe for Option<T> {
    const MAY_BE_MISSING: bool = true;

    fn describe(defs: &mut Defs) -> Value {
        nullable(T::describe(defs))
    }
}

impl<T: Describe> Describe for List<T> {
    const MAY_BE_MISSING: bool = true;

    fn describe(defs: &mut Defs) -> Value {
        json!({ "type": ["array", "null"], "items": T::describe(defs) })
    }
}

impl Describe for RateMap {
    const MAY_BE_MISSING: bool = true;

    fn describe(defs: &mut Defs) -> Value {
        // The validator's test of a code: three capital letters.
        json!({
            "type": ["object", "null"],
            "patternProperties": { "^[A-Z]{3}$": MoneyText::describe(defs) },
            "additionalProperties": false,
        })
    }
}

/// What a config file holds, by its top-level key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// `advertiser:`, with its `audiences`, `creatives` and `orders`.
    Advertiser,
    /// `exchange:`, an exchange profile.
    Exchange,
    /// `currency_rates:`.
    CurrencyRates,
}

impl FileKind {
    pub const ALL: [FileKind; 3] = [
        FileKind::Advertiser,
        FileKind::Exchange,
        FileKind::CurrencyRates,
    ];

    /// The top-level key that says a file is of this kind.
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Advertiser => "advertiser",
            FileKind::Exchange => "exchange",
            FileKind::CurrencyRates => "currency_rates",
        }
    }

    /// The top-level keys a file of this kind may have (the validator
    /// keeps the advertiser's lists to advertiser files).
    pub(crate) fn keys(self) -> &'static [&'static str] {
        match self {
            FileKind::Advertiser => &["advertiser", "audiences", "creatives", "orders"],
            FileKind::Exchange => &["exchange"],
            FileKind::CurrencyRates => &["currency_rates"],
        }
    }

    fn title(self) -> &'static str {
        match self {
            FileKind::Advertiser => "advertiser file",
            FileKind::Exchange => "exchange file",
            FileKind::CurrencyRates => "currency rates file",
        }
    }

    fn describe(self, defs: &mut Defs) -> Map<String, Value> {
        let mut object = RawFile::MAPPING.object(defs, |key| self.keys().contains(&key));
        object.insert("title".into(), self.title().into());
        let key = self.as_str();
        let description = object["properties"][key]["description"].clone();
        object.insert("description".into(), description);
        let own = object["properties"][key].take();
        object["properties"][key] = non_null(own);
        object.insert("required".into(), json!([key]));
        object
    }
}

/// The JSON Schema (draft-07) of every config file: one of an advertiser
/// file, an exchange file and a currency rates file.
pub fn json_schema() -> Value {
    schema(&FileKind::ALL)
}

/// The JSON Schema (draft-07) of the files of one kind.
pub fn json_schema_of(kind: FileKind) -> Value {
    schema(&[kind])
}

fn schema(kinds: &[FileKind]) -> Value {
    let mut defs = Defs::new();
    let mut branches: Vec<Map<String, Value>> =
        kinds.iter().map(|k| k.describe(&mut defs)).collect();
    let mut root = Map::new();
    root.insert("$schema".into(), DRAFT_07.into());
    if branches.len() == 1 {
        root.append(&mut branches[0]);
    } else {
        root.insert("title".into(), "bidder config file".into());
        root.insert(
            "description".into(),
            "A bidder config file: one advertiser with its audiences, creatives and orders, \
             one exchange profile, or the currency rates. `bidder validate` checks what a \
             schema cannot (ranges, dates, URLs, references between ids)."
                .into(),
        );
        root.insert(
            "oneOf".into(),
            branches.into_iter().map(Value::Object).collect(),
        );
    }
    root.insert("definitions".into(), defs.into());
    Value::Object(root)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    use super::*;
    use crate::load::{load_files, parse};
    use crate::raw::MAPPINGS;

    /// The schema a `$ref`, `allOf` or nullable `anyOf` stands for.
    fn resolve<'s>(mut schema: &'s Value, root: &'s Value) -> &'s Value {
        loop {
            schema = if let Some(Value::String(r)) = schema.get("$ref") {
                let name = r.strip_prefix("#/definitions/").expect("local refs only");
                &root["definitions"][name]
            } else if let Some(Value::Array(all)) = schema.get("allOf") {
                &all[0]
            } else if let Some(Value::Array(any)) = schema.get("anyOf") {
                any.iter()
                    .find(|s| **s != json!({ "type": "null" }))
                    .expect("a branch besides null")
            } else {
                return schema;
            };
        }
    }

    fn allows_null(schema: &Value) -> bool {
        types(schema).contains(&"null")
            || schema["enum"]
                .as_array()
                .is_some_and(|e| e.contains(&Value::Null))
            || schema["anyOf"]
                .as_array()
                .is_some_and(|a| a.contains(&json!({ "type": "null" })))
    }

    /// A value the schema accepts, with every key of every mapping and one
    /// item in every list.
    fn everything(schema: &Value, root: &Value) -> Value {
        let schema = resolve(schema, root);
        if let Some(values) = schema.get("enum") {
            return values[0].clone();
        }
        if let Some(Value::Object(properties)) = schema.get("properties") {
            return properties
                .iter()
                .map(|(k, s)| (k.clone(), everything(s, root)))
                .collect::<Map<_, _>>()
                .into();
        }
        if let Some(Value::Object(patterns)) = schema.get("patternProperties") {
            assert_eq!(patterns.keys().collect::<Vec<_>>(), ["^[A-Z]{3}$"]);
            return json!({ "EUR": everything(&patterns["^[A-Z]{3}$"], root) });
        }
        let types = types(schema);
        if types.contains(&"array") {
            json!([everything(&schema["items"], root)])
        } else if types.contains(&"string") {
            json!("x")
        } else if types.contains(&"integer") || types.contains(&"number") {
            json!(1)
        } else if types.contains(&"boolean") {
            json!(true)
        } else {
            panic!("no example for {schema}")
        }
    }

    /// Every mapping under `schema`, as (JSON pointer into `everything`'s
    /// value, the mapping's schema).
    fn mappings<'s>(
        schema: &'s Value,
        root: &'s Value,
        pointer: String,
        out: &mut Vec<(String, &'s Value)>,
    ) {
        let schema = resolve(schema, root);
        if let Some(Value::Object(properties)) = schema.get("properties") {
            out.push((pointer.clone(), schema));
            for (key, s) in properties {
                mappings(s, root, format!("{pointer}/{key}"), out);
            }
        } else if let Some(items) = schema.get("items") {
            mappings(items, root, format!("{pointer}/0"), out);
        }
    }

    /// An edit of one mapping of a document.
    type Change<'c> = &'c dyn Fn(&mut Map<String, Value>);

    /// JSON is YAML: the loader's parser reads `value` as a file.
    fn parses(value: &Value) -> Result<(), String> {
        let text = serde_json::to_string(value).expect("serializes");
        parse(&text).map(drop).map_err(|(_, _, message)| message)
    }

    /// The schema and serde agree on every mapping's keys, on which are
    /// required, on which may be left empty, and on where a single value
    /// goes and where a list or mapping does.
    #[test]
    fn schema_and_parser_agree_on_every_key() {
        let root = json_schema();
        let mut checked = 0;
        for kind in FileKind::ALL {
            let file = &root["oneOf"]
                .as_array()
                .expect("oneOf")
                .iter()
                .find(|b| b["required"] == json!([kind.as_str()]))
                .expect("a branch per kind");
            let full = everything(file, &root);
            parses(&full).unwrap_or_else(|e| panic!("{kind:?} with every key: {e}\n{full}"));
            let mut found = Vec::new();
            mappings(file, &root, String::new(), &mut found);
            for (pointer, mapping) in found {
                let edit = |change: Change<'_>| {
                    let mut doc = full.clone();
                    change(doc.pointer_mut(&pointer).unwrap().as_object_mut().unwrap());
                    (parses(&doc), doc)
                };
                let (unknown, doc) = edit(&|m| {
                    m.insert("zz_unknown".into(), json!(1));
                });
                let message = unknown.expect_err("unknown keys are refused");
                assert!(
                    message.starts_with("unknown key \"zz_unknown\" in "),
                    "{pointer}: the mapping has no name: {message}\n{doc}"
                );
                let required = mapping["required"].as_array().cloned().unwrap_or_default();
                for (key, schema) in mapping["properties"].as_object().unwrap() {
                    let at = format!("{pointer}/{key}");
                    let schema = resolve(schema, &root);
                    let remove = |m: &mut Map<String, Value>| {
                        m.remove(key);
                    };
                    let null = |m: &mut Map<String, Value>| {
                        m.insert(key.clone(), Value::Null);
                    };
                    let (missing, doc) = edit(&remove);
                    if pointer.is_empty() && key == kind.as_str() {
                        // What a file is, is the validator's to say: the
                        // parser reads every top-level key as optional.
                        let changes: [Change<'_>; 2] = [&remove, &null];
                        for change in changes {
                            let text = serde_json::to_string(&edit(change).1).unwrap();
                            let loaded = load_files(&[(PathBuf::from("a.yaml"), text)]);
                            let problems = loaded.expect_err("a file says what it is").0;
                            assert!(
                                problems
                                    .iter()
                                    .any(|p| p.message.contains("none of the keys")),
                                "{problems:?}"
                            );
                        }
                        checked += 1;
                        continue;
                    }
                    if required.contains(&json!(key)) {
                        let message = missing
                            .err()
                            .unwrap_or_else(|| panic!("{at} is required, but parses without"));
                        assert!(
                            message.contains(&format!("missing required key \"{key}\"")),
                            "{at}: {message}\n{doc}"
                        );
                    } else {
                        missing.unwrap_or_else(|e| panic!("{at} is optional, but: {e}\n{doc}"));
                    }
                    let nullable =
                        allows_null(schema) || allows_null(&mapping["properties"][key.as_str()]);
                    let (result, doc) = edit(&null);
                    assert_eq!(
                        result.is_ok(),
                        nullable,
                        "{at} left empty: schema allows it: {nullable}, parser: {result:?}\n{doc}"
                    );
                    let types = types(schema);
                    let container = schema.get("properties").is_some()
                        || schema.get("patternProperties").is_some()
                        || types.contains(&"array");
                    let wrong = if container {
                        json!("x")
                    } else if !types.contains(&"string") && schema.get("enum").is_none() {
                        // Whole numbers and true/false.
                        json!("not-a-value")
                    } else {
                        json!({ "a": 1 })
                    };
                    let (result, doc) = edit(&|m| {
                        m.insert(key.clone(), wrong.clone());
                    });
                    assert!(
                        result.is_err(),
                        "{at} took a value of the wrong type\n{doc}"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 100, "only {checked} keys checked");
    }

    /// Each file of the templates below holds `<key>` where a key with an
    /// `enum` takes its value, on a line of its own so that a problem with
    /// the value is on that line; missing keys are reported at the start of
    /// their mapping, never at these lines.
    const TEMPLATES: [&str; 3] = [
        "\
advertiser:
  id: a
  name: A
  domains: [a.example]
audiences:
  - id: aud
    kind: <kind>
creatives:
  - id: c
    click_url: https://a.example/
    format: <format>
orders:
  - id: o
    budget: 100
    flight: { start: 2026-01-01, end: 2026-01-02 }
    service: <service>
    line_items:
      - id: l
        cpm: 1
        budget: { daily: 1 }
        creatives: [c]
        media: <media>
        bidding:
          max_cpc: 1
          strategy: <strategy>
        targeting:
          os: [<os>]
          devices: [<devices>]
          placements: [<placements>]
          dayparts:
            slots:
              - from: \"07:00\"
                to: \"08:00\"
                days: [<days>]
            timezone: <timezone>
",
        "\
exchange:
  id: x
  name: X
  charge_on: <charge_on>
  vast_default: \"<vast_default>\"
  openrtb_version: \"<openrtb_version>\"
  price_encryption:
    encryption_key_env: CFG_SCHEMA_UNSET_ENC
    integrity_key_env: CFG_SCHEMA_UNSET_INT
    scheme: <scheme>
",
        "\
currency_rates:
  as_of: 2026-11-30
  rates: { EUR: 0.95 }
  base: <base>
",
    ];

    /// The value of every other placeholder while one is tested: one that
    /// raises no problem on the tested line.
    const DEFAULTS: [(&str, &str); 15] = [
        ("strategy", "max_cpc"),
        ("kind", "views"),
        ("format", "display"),
        ("service", "self_service"),
        ("media", "video"),
        ("os", "ios"),
        ("devices", "phone"),
        ("placements", "instream"),
        ("days", "mon"),
        ("timezone", "utc"),
        ("charge_on", "win"),
        ("vast_default", "3.0"),
        ("openrtb_version", "2.6"),
        ("scheme", "google"),
        ("base", "USD"),
    ];

    /// The keys with an `enum`, and its values.
    fn enums(root: &Value) -> Vec<(String, Vec<String>)> {
        let mut out = Vec::new();
        for definition in root["definitions"].as_object().unwrap().values() {
            for (key, schema) in definition["properties"].as_object().unwrap() {
                let schema = schema.get("items").unwrap_or(schema);
                if let Some(values) = schema["enum"].as_array() {
                    let values = values.iter().filter_map(Value::as_str).map(str::to_owned);
                    out.push((key.clone(), values.collect()));
                }
            }
        }
        out
    }

    /// Each `enum` is exactly what the validator accepts: every value loads
    /// without a problem at it, and a value off the list is refused there.
    #[test]
    fn every_enum_is_what_the_validator_accepts() {
        let root = json_schema();
        let enums = enums(&root);
        let keys: BTreeSet<&str> = enums.iter().map(|(k, _)| k.as_str()).collect();
        let covered: BTreeSet<&str> = DEFAULTS.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            keys, covered,
            "every key with an enum needs a template line"
        );
        for (key, values) in &enums {
            let placeholder = format!("<{key}>");
            let template = TEMPLATES
                .iter()
                .find(|t| t.contains(&placeholder))
                .expect("covered");
            let line = template[..template.find(&placeholder).unwrap()]
                .matches('\n')
                .count() as u64
                + 1;
            let bogus = "zz-not-a-value".to_owned();
            for value in values.iter().chain([&bogus]) {
                let mut text = template.replace(&placeholder, value);
                for (other, default) in DEFAULTS {
                    text = text.replace(&format!("<{other}>"), default);
                }
                let problems = match load_files(&[(PathBuf::from("a.yaml"), text.clone())]) {
                    Ok(_) => Vec::new(),
                    Err(problems) => problems.0,
                };
                let here: Vec<&str> = problems
                    .iter()
                    .filter(|p| p.line == line)
                    .map(|p| p.message.as_str())
                    .collect();
                if *value == bogus {
                    assert!(!here.is_empty(), "{key}: {value} was accepted\n{text}");
                } else {
                    assert!(here.is_empty(), "{key}: {value}: {here:?}\n{text}");
                }
            }
        }
    }

    #[test]
    fn file_kinds_share_out_the_top_level_keys() {
        let mut keys: Vec<&str> = FileKind::ALL
            .iter()
            .flat_map(|k| k.keys())
            .copied()
            .collect();
        let top: Vec<&str> = RawFile::MAPPING.keys.iter().map(|k| k.name).collect();
        keys.sort_unstable();
        let mut sorted = top.clone();
        sorted.sort_unstable();
        assert_eq!(keys, sorted, "each top-level key in exactly one file kind");
        for kind in FileKind::ALL {
            assert!(top.contains(&kind.as_str()));
            assert_eq!(kind.keys()[0], kind.as_str());
        }
    }

    /// `raw::mapping_name` recognises a mapping by its keys alone.
    #[test]
    fn no_two_mappings_have_the_same_keys() {
        let mut seen = BTreeSet::new();
        for m in MAPPINGS {
            let keys: Vec<&str> = m.keys.iter().map(|k| k.name).collect();
            assert!(seen.insert(keys), "{} has another mapping's keys", m.name);
        }
        let names: BTreeSet<String> = MAPPINGS.iter().map(Mapping::definition).collect();
        assert_eq!(names.len(), MAPPINGS.len());
    }

    #[test]
    fn definitions_are_snake_case_without_raw() {
        assert_eq!(crate::raw::RawLineItem::MAPPING.definition(), "line_item");
        assert_eq!(
            crate::raw::RawDaypartSlot::MAPPING.definition(),
            "daypart_slot"
        );
        assert_eq!(crate::raw::RawFile::MAPPING.definition(), "file");
    }

    #[test]
    fn descriptions_join_lines_and_keep_paragraphs() {
        assert_eq!(description(&[]), None);
        assert_eq!(
            description(&[" One", " two.", "", " Three."]).unwrap(),
            "One two.\n\nThree."
        );
    }

    #[test]
    fn one_kind_is_that_branch_alone() {
        let all = json_schema();
        for (i, kind) in FileKind::ALL.into_iter().enumerate() {
            let one = json_schema_of(kind);
            assert_eq!(one["$schema"], DRAFT_07);
            assert_eq!(one["required"], json!([kind.as_str()]));
            assert!(one.get("oneOf").is_none());
            for (key, value) in all["oneOf"][i].as_object().unwrap() {
                assert_eq!(&one[key], value, "{kind:?}: {key}");
            }
            for definition in one["definitions"].as_object().unwrap().keys() {
                assert!(all["definitions"].get(definition).is_some());
            }
        }
        let exchange = json_schema_of(FileKind::Exchange);
        let names: Vec<&String> = exchange["definitions"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(names, ["exchange", "price_encryption"]);
    }
}

//! A small YAML writer for the files `switchboard import` writes: block mappings and lists,
//! with short values (secrets, deployments, name lists) in flow style as the README writes
//! them, and every string quoted unless it reads back as the same string in YAML 1.1 and 1.2.

/// A value to write.
pub enum Node {
    Str(String),
    Int(u64),
    Num(f64),
    Bool(bool),
    Map(Vec<(String, Node)>),
    List(Vec<Node>),
    /// A mapping on one line: `{env: OPENAI_API_KEY}`.
    FlowMap(Vec<(String, Node)>),
    /// A list on one line: `[gpt-4o, claude]`.
    FlowList(Vec<Node>),
}

impl Node {
    pub fn str(s: impl Into<String>) -> Node {
        Node::Str(s.into())
    }
}

/// The document: `root`'s entries at the top level.
pub fn document(root: &[(String, Node)]) -> String {
    let mut out = String::new();
    block_map(root, 0, &mut out);
    out
}

fn block_map(entries: &[(String, Node)], indent: usize, out: &mut String) {
    for (key, value) in entries {
        out.push_str(&" ".repeat(indent));
        out.push_str(&string(key, false));
        out.push(':');
        after_key(value, indent, out);
    }
}

/// A value after `key:` (or `- `): inline when it fits on the line, else on the lines below.
fn after_key(value: &Node, indent: usize, out: &mut String) {
    match value {
        Node::Map(entries) if !entries.is_empty() => {
            out.push('\n');
            block_map(entries, indent + 2, out);
        }
        Node::List(items) if !items.is_empty() => {
            out.push('\n');
            block_list(items, indent + 2, out);
        }
        other => {
            out.push(' ');
            out.push_str(&inline(other));
            out.push('\n');
        }
    }
}

fn block_list(items: &[Node], indent: usize, out: &mut String) {
    for item in items {
        out.push_str(&" ".repeat(indent));
        out.push_str("- ");
        match item {
            // The first entry on the dash's line, the others under it.
            Node::Map(entries) if !entries.is_empty() => {
                let mut first = String::new();
                block_map(entries, indent + 2, &mut first);
                out.push_str(first.trim_start());
            }
            other => {
                out.push_str(&inline(other));
                out.push('\n');
            }
        }
    }
}

/// A value on one line.
fn inline(value: &Node) -> String {
    match value {
        Node::Str(s) => string(s, true),
        Node::Int(n) => n.to_string(),
        Node::Num(x) => number(*x),
        Node::Bool(b) => b.to_string(),
        Node::Map(entries) | Node::FlowMap(entries) => {
            let inner: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{}: {}", string(k, true), inline(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
        Node::List(items) | Node::FlowList(items) => {
            let inner: Vec<String> = items.iter().map(inline).collect();
            format!("[{}]", inner.join(", "))
        }
    }
}

/// A float as YAML reads it back: `2.5`, `10`, `0.000001`.
fn number(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        "0".into()
    }
}

/// Words YAML 1.1 readers (PyYAML among them) take for something other than a string.
const NOT_STRINGS: &[&str] = &[
    "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~",
];

/// `s` plain when that reads back as the same string, else double-quoted (JSON's quoting is
/// valid YAML). `in_flow`: inside `{...}` or `[...]`, where `,[]{}` end a plain scalar.
fn string(s: &str, in_flow: bool) -> String {
    let plain_in_block = serde_yaml::to_string(s).is_ok_and(|y| y == format!("{s}\n"));
    let starts_well = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || "/_.$(".contains(c));
    let number_like = s.chars().all(|c| "0123456789.-+:_eE".contains(c));
    let reserved = NOT_STRINGS.contains(&s.to_ascii_lowercase().as_str());
    let ends_flow = in_flow && s.contains([',', '[', ']', '{', '}']);
    let plain = plain_in_block
        && starts_well
        && !number_like
        && !reserved
        && !ends_flow
        && !s.contains('#');
    if plain {
        s.to_owned()
    } else {
        serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_blocks_with_short_values_inline() {
        let doc = document(&[
            (
                "providers".into(),
                Node::Map(vec![(
                    "azure-eu".into(),
                    Node::Map(vec![
                        ("kind".into(), Node::str("azure")),
                        (
                            "api_key".into(),
                            Node::FlowMap(vec![("env".into(), Node::str("AZURE_KEY"))]),
                        ),
                        ("api_version".into(), Node::str("2024-10-21")),
                    ]),
                )]),
            ),
            (
                "models".into(),
                Node::List(vec![Node::Map(vec![
                    ("name".into(), Node::str("gpt-4o")),
                    ("aliases".into(), Node::FlowList(vec![Node::str("a,b")])),
                    (
                        "deployments".into(),
                        Node::List(vec![Node::FlowMap(vec![
                            ("provider".into(), Node::str("azure-eu")),
                            ("weight".into(), Node::Int(3)),
                            (
                                "price".into(),
                                Node::FlowMap(vec![("input".into(), Node::Num(2.5))]),
                            ),
                        ])]),
                    ),
                    ("drop_unsupported_params".into(), Node::Bool(true)),
                ])]),
            ),
        ]);
        assert_eq!(
            doc,
            "providers:\n  azure-eu:\n    kind: azure\n    api_key: {env: AZURE_KEY}\n    \
             api_version: \"2024-10-21\"\nmodels:\n  - name: gpt-4o\n    aliases: [\"a,b\"]\n    \
             deployments:\n      - {provider: azure-eu, weight: 3, price: {input: 2.5}}\n    \
             drop_unsupported_params: true\n"
        );
        let back: serde_yaml::Value = serde_yaml::from_str(&doc).unwrap();
        assert_eq!(back["providers"]["azure-eu"]["api_version"], "2024-10-21");
        assert_eq!(back["models"][0]["aliases"][0], "a,b");
    }

    #[test]
    fn strings_read_back_as_the_same_strings() {
        for s in [
            "gpt-4o",
            "claude-3-5-sonnet@20240620",
            "anthropic.claude-3-haiku-20240307-v1:0",
            "https://h.example/v1",
            "2024-10-21",
            "10",
            "1e5",
            "yes",
            "Off",
            "",
            "a: b",
            "a #b",
            "*",
            "-x",
            "it's",
            "{x}",
            "line\nbreak",
        ] {
            for in_flow in [false, true] {
                let written = string(s, in_flow);
                let doc = if in_flow {
                    format!("k: [{written}]")
                } else {
                    format!("k: {written}")
                };
                let back: serde_yaml::Value = serde_yaml::from_str(&doc).unwrap();
                let got = if in_flow { &back["k"][0] } else { &back["k"] };
                assert_eq!(got.as_str(), Some(s), "{doc}");
            }
        }
        assert_eq!(string("gpt-4o", true), "gpt-4o");
        assert_eq!(string("yes", false), "\"yes\"");
        assert_eq!(number(0.000001), "0.000001");
        assert_eq!(number(10.0), "10");
    }
}

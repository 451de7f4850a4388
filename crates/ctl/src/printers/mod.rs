//! Output of `get` and friends: kubectl's tables per kind, `-o yaml|json|name`.

pub mod table;

use std::str::FromStr;
use std::time::SystemTime;

use anyhow::bail;
use navarch_api::table_columns::{self, ColumnDefinition, at, labels_string, str_at};
use navarch_api::{KindInfo, Object};
use serde::Serialize;
use serde_json::Value;

use crate::kinds::{object_ref, singular_ref};
use table::Table;

/// `-o` formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Wide,
    Yaml,
    Json,
    Name,
}

impl Format {
    /// Tables and names, as opposed to YAML/JSON documents.
    pub fn is_textual(self) -> bool {
        matches!(self, Format::Table | Format::Wide | Format::Name)
    }
}

impl FromStr for Format {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Format> {
        Ok(match s {
            "" => Format::Table,
            "wide" => Format::Wide,
            "yaml" => Format::Yaml,
            "json" => Format::Json,
            "name" => Format::Name,
            other => bail!(
                "unable to match a printer suitable for the output format {other:?}, allowed formats are: json,name,wide,yaml"
            ),
        })
    }
}

/// The JSON form of an object, with `apiVersion` and `kind` set.
pub fn to_value(obj: &Object) -> Value {
    let mut obj = obj.clone();
    obj.set_type_meta();
    serde_json::to_value(&obj).expect("API objects always serialize")
}

/// `deployment.apps/web`.
pub fn name_of(obj: &Object) -> String {
    object_ref(obj.info(), &obj.meta().name)
}

#[derive(Serialize)]
struct ListMeta {
    #[serde(rename = "resourceVersion")]
    resource_version: &'static str,
}

/// kubectl's `kind: List` wrapper for several objects.
#[derive(Serialize)]
struct List<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    items: &'a [Object],
    metadata: ListMeta,
}

fn with_type_meta(objects: &[Object]) -> Vec<Object> {
    objects
        .iter()
        .cloned()
        .map(|mut o| {
            o.set_type_meta();
            o
        })
        .collect()
}

/// Objects as YAML or JSON: a single object as itself, otherwise a `kind: List`.
pub fn serialize(objects: &[Object], format: Format, single: bool) -> anyhow::Result<String> {
    let objects = with_type_meta(objects);
    let list = List {
        api_version: "v1",
        kind: "List",
        items: &objects,
        metadata: ListMeta { resource_version: "" },
    };
    Ok(match (format, single && objects.len() == 1) {
        (Format::Yaml, true) => serde_yaml::to_string(&objects[0])?,
        (Format::Yaml, false) => serde_yaml::to_string(&list)?,
        (Format::Json, true) => json_pretty(&objects[0])? + "\n",
        (Format::Json, false) => json_pretty(&list)? + "\n",
        (f, _) => bail!("{f:?} is not a serialization format"),
    })
}

/// JSON indented by four spaces, like kubectl.
pub fn json_pretty(v: &impl Serialize) -> anyhow::Result<String> {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    v.serialize(&mut ser)?;
    Ok(String::from_utf8(buf)?)
}

/// Table options from `get`'s flags.
#[derive(Debug, Clone, Copy, Default)]
pub struct TableOptions {
    pub wide: bool,
    pub show_labels: bool,
    pub no_headers: bool,
    /// A leading NAMESPACE column (`-A`).
    pub with_namespace: bool,
    /// Names as `kind/name` (several kinds in one `get`).
    pub with_kind: bool,
}

/// Prints one kind's table, possibly in several installments (`get -w`), keeping columns aligned.
///
/// The columns and cells are the api-server's Table for the kind ([`table_columns`]); like kubectl, it
/// shows the priority-0 columns, and all of them with `-o wide`.
pub struct TablePrinter {
    kind: &'static KindInfo,
    opts: TableOptions,
    columns: Vec<ColumnDefinition>,
    table: Table,
    header_done: bool,
}

impl TablePrinter {
    pub fn new(kind: &'static KindInfo, opts: TableOptions) -> TablePrinter {
        TablePrinter {
            kind,
            opts,
            columns: table_columns::columns(kind.kind),
            table: Table::new(),
            header_done: opts.no_headers,
        }
    }

    /// The header row (first call only) and a row per object.
    pub fn rows(&mut self, objects: &[Value], now: SystemTime) -> String {
        let mut rows = Vec::with_capacity(objects.len() + 1);
        if !self.header_done {
            rows.push(self.header());
            self.header_done = true;
        }
        for o in objects {
            rows.push(self.row(o, now));
        }
        self.table.format(&rows)
    }

    fn shown(&self, column: &ColumnDefinition) -> bool {
        self.opts.wide || column.priority == 0
    }

    fn header(&self) -> Vec<String> {
        let mut h: Vec<String> = Vec::new();
        if self.opts.with_namespace && self.kind.namespaced {
            h.push("NAMESPACE".into());
        }
        h.extend(self.columns.iter().filter(|c| self.shown(c)).map(|c| c.name.to_uppercase()));
        if self.opts.show_labels {
            h.push("LABELS".into());
        }
        h
    }

    fn row(&self, o: &Value, now: SystemTime) -> Vec<String> {
        let mut row = Vec::with_capacity(self.columns.len() + 2);
        if self.opts.with_namespace && self.kind.namespaced {
            row.push(str_at(o, "metadata.namespace").to_string());
        }
        let cells = table_columns::cells(self.kind.kind, o, now);
        for (column, cell) in self.columns.iter().zip(&cells) {
            if !self.shown(column) {
                continue;
            }
            let text = cell_text(cell);
            // Several kinds in one `get`: kubectl writes names as `kind/name`.
            if self.opts.with_kind && column.format == "name" && column.type_ == "string" {
                row.push(format!("{}/{text}", singular_ref(self.kind)));
            } else {
                row.push(text);
            }
        }
        if self.opts.show_labels {
            row.push(labels_string(at(o, "metadata.labels")));
        }
        row
    }
}

/// A Table cell as kubectl prints it: a string up to its first line break (then `...`), anything else
/// in its plain form.
fn cell_text(cell: &Value) -> String {
    match cell {
        Value::String(s) => match s.find(['\n', '\r', '\x0c']) {
            Some(i) => format!("{}...", &s[..i]),
            None => s.clone(),
        },
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// kubectl's message when a list is empty.
pub fn no_resources_message(kind: &KindInfo, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) if kind.namespaced => format!("No resources found in {ns} namespace."),
        _ => "No resources found".to_string(),
    }
}

#[cfg(test)]
mod tests;

//! `navctl get`: tables, `-o yaml|json|name`, and `-w` (list, then print every change; resume from the
//! last resourceVersion when the stream breaks, relist when it has expired).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use anyhow::bail;
use futures::StreamExt;
use navarch_api::{KindInfo, Object};
use navarch_client::{ListParams, WatchEvent, WatchParams};

use crate::cli::GetArgs;
use crate::context::{Context, Outcome, emit, say};
use crate::errors;
use crate::kinds::{self, Selection};
use crate::printers::{self, Format, TableOptions, TablePrinter};

pub async fn run(ctx: &Context, args: &GetArgs) -> anyhow::Result<Outcome> {
    let selections = kinds::parse_args(&args.resources)?;
    let watching = args.watch || args.watch_only;
    if watching && selections.len() > 1 {
        bail!("you may only specify a single resource type");
    }
    if let Some(sel) = &args.selector {
        navarch_api::selector::Selector::parse(sel)?;
    }
    let namespace = if args.all_namespaces { String::new() } else { ctx.namespace().to_string() };
    let table_opts = TableOptions {
        wide: args.output == Format::Wide,
        show_labels: args.show_labels,
        no_headers: args.no_headers,
        with_namespace: args.all_namespaces,
        with_kind: selections.len() > 1,
    };

    let mut failed = false;
    let mut all_objects: Vec<Object> = Vec::new();
    let mut tables_printed = 0;
    let single = selections.len() == 1 && selections[0].names.len() == 1;
    let mut found_any = false;
    let ns_for_message = (!args.all_namespaces).then_some(namespace.as_str());
    for sel in &selections {
        let (objects, resource_version) = if args.watch_only {
            (Vec::new(), String::new())
        } else {
            let (objects, rv, sel_failed) = fetch(ctx, sel, args, &namespace).await?;
            failed |= sel_failed;
            (objects, rv)
        };
        let mut printer = TablePrinter::new(sel.kind, table_opts);
        found_any |= !objects.is_empty();
        if watching {
            if objects.is_empty() && sel.names.is_empty() && !args.watch_only && args.output.is_textual() {
                eprintln!("{}", printers::no_resources_message(sel.kind, ns_for_message));
            }
            let mut watch = Watch {
                ctx,
                kind: sel.kind,
                args,
                namespace: &namespace,
                names: &sel.names,
                printer,
                known: BTreeMap::new(),
                printed: false,
            };
            watch.print_initial(&objects);
            watch.known = objects.into_iter().map(|o| (key(&o), o)).collect();
            let resource_version = if args.watch_only {
                list_resource_version(ctx, sel, args, &namespace).await?
            } else {
                resource_version
            };
            return tokio::select! {
                r = watch.run(resource_version) => r,
                _ = tokio::signal::ctrl_c() => Ok(Outcome::from_failed(failed)),
            };
        }
        match args.output {
            Format::Table | Format::Wide => {
                if !objects.is_empty() {
                    if tables_printed > 0 {
                        emit("\n");
                    }
                    tables_printed += 1;
                    let values: Vec<_> = objects.iter().map(printers::to_value).collect();
                    emit(&printer.rows(&values, SystemTime::now()));
                }
            }
            Format::Name => {
                for o in &objects {
                    say(printers::name_of(o));
                }
            }
            Format::Yaml | Format::Json => all_objects.extend(objects),
        }
    }
    let listed = selections.iter().all(|s| s.names.is_empty());
    if !found_any && listed && args.output.is_textual() {
        // kubectl says which namespace only when it is the same for every kind asked for.
        let namespaced = selections.iter().all(|s| s.kind.namespaced);
        let kind = selections[0].kind;
        eprintln!("{}", printers::no_resources_message(kind, ns_for_message.filter(|_| namespaced)));
    }
    let nothing_found_by_name = single && all_objects.is_empty();
    if !args.output.is_textual() && !nothing_found_by_name {
        emit(&printers::serialize(&all_objects, args.output, single)?);
    }
    Ok(Outcome::from_failed(failed))
}

fn serialize_one(o: &Object, format: Format) -> String {
    match printers::serialize(std::slice::from_ref(o), format, true) {
        Ok(s) if format == Format::Yaml => format!("---\n{s}"),
        Ok(s) => s,
        Err(e) => format!("# cannot print {}: {e}\n", printers::name_of(o)),
    }
}

fn list_params(args: &GetArgs, namespace: &str, names: &[String]) -> ListParams {
    let mut field_selector = args.field_selector.clone().unwrap_or_default();
    if let [name] = names {
        if !field_selector.is_empty() {
            field_selector.push(',');
        }
        field_selector.push_str(&format!("metadata.name={name}"));
    }
    ListParams {
        namespace: namespace.to_string(),
        label_selector: args.selector.clone().unwrap_or_default(),
        field_selector,
        ..Default::default()
    }
}

/// The objects a selection names (each by get; a missing one is reported and counted as a failure), or
/// every object of the kind (by paged list). Returns them, the resourceVersion to watch from, and
/// whether anything failed.
async fn fetch(
    ctx: &Context,
    sel: &Selection,
    args: &GetArgs,
    namespace: &str,
) -> anyhow::Result<(Vec<Object>, String, bool)> {
    if sel.names.is_empty() {
        let (objects, rv) = ctx.list(sel.kind, &list_params(args, namespace, &[]), args.chunk_size).await?;
        return Ok((objects, rv, false));
    }
    let ns = if namespace.is_empty() { ctx.namespace() } else { namespace };
    let mut objects = Vec::new();
    let mut failed = false;
    for name in &sel.names {
        match ctx.get(sel.kind, ns, name).await {
            Ok(o) => objects.push(o),
            Err(e) if e.downcast_ref::<errors::ServerError>().is_some() => {
                crate::report(&e);
                failed = true;
            }
            Err(e) => return Err(e),
        }
    }
    let rv = if args.watch { list_resource_version(ctx, sel, args, ns).await? } else { String::new() };
    Ok((objects, rv, failed))
}

async fn list_resource_version(
    ctx: &Context,
    sel: &Selection,
    args: &GetArgs,
    namespace: &str,
) -> anyhow::Result<String> {
    let mut p = list_params(args, namespace, &sel.names);
    p.limit = 1;
    let page = ctx
        .client()
        .await?
        .list(sel.kind.kind, &ListParams { namespace: ctx.namespace_for(sel.kind, namespace), ..p })
        .await
        .map_err(|e| errors::general(e, ctx.server()))?;
    Ok(page.resource_version)
}

fn key(o: &Object) -> String {
    o.key()
}

/// State of `get -w`.
struct Watch<'a> {
    ctx: &'a Context,
    kind: &'static KindInfo,
    args: &'a GetArgs,
    namespace: &'a str,
    names: &'a [String],
    printer: TablePrinter,
    /// The last state of every object seen, to print only real changes after a relist.
    known: BTreeMap<String, Object>,
    /// Whether anything has been printed (a YAML document separator is needed before the next).
    printed: bool,
}

const RETRY_MIN: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(5);

impl Watch<'_> {
    async fn run(mut self, mut resource_version: String) -> anyhow::Result<Outcome> {
        let client = self.ctx.client().await?.clone();
        let mut params = WatchParams {
            namespace: self.ctx.namespace_for(self.kind, self.namespace),
            label_selector: self.args.selector.clone().unwrap_or_default(),
            field_selector: list_params(self.args, self.namespace, self.names).field_selector,
            resource_version: String::new(),
            allow_bookmarks: true,
        };
        let mut delay = RETRY_MIN;
        let mut warned = false;
        loop {
            params.resource_version = resource_version.clone();
            let mut stream = match client.watch(self.kind.kind, &params).await {
                Ok(s) => s,
                Err(navarch_client::Error::Expired(_)) => {
                    resource_version = self.relist().await?;
                    continue;
                }
                Err(e) if e.is_transient() => {
                    if !warned {
                        eprintln!("warning: watch interrupted ({e}); reconnecting");
                        warned = true;
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(RETRY_MAX);
                    continue;
                }
                Err(e) => return Err(errors::general(e, self.ctx.server())),
            };
            while let Some(ev) = stream.next().await {
                match ev {
                    Ok(WatchEvent::Bookmark(rv)) => resource_version = rv,
                    Ok(WatchEvent::Added(o) | WatchEvent::Modified(o)) => {
                        resource_version = o.meta().resource_version.clone();
                        self.print(&o);
                        self.known.insert(key(&o), o);
                    }
                    Ok(WatchEvent::Deleted(o)) => {
                        resource_version = o.meta().resource_version.clone();
                        self.print(&o);
                        self.known.remove(&key(&o));
                    }
                    Err(navarch_client::Error::Expired(_)) => {
                        resource_version = self.relist().await?;
                        break;
                    }
                    Err(e) => {
                        if !warned {
                            eprintln!("warning: watch interrupted ({e}); resuming");
                            warned = true;
                        }
                        break;
                    }
                }
                delay = RETRY_MIN;
                warned = false;
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(RETRY_MAX);
        }
    }

    /// Lists again after the watch expired; prints what changed meanwhile (deleted objects in their last
    /// known state). Returns the list's resourceVersion.
    async fn relist(&mut self) -> anyhow::Result<String> {
        let p = list_params(self.args, self.namespace, self.names);
        let (objects, rv) = self.ctx.list(self.kind, &p, self.args.chunk_size).await?;
        let mut fresh: BTreeMap<String, Object> = objects.into_iter().map(|o| (key(&o), o)).collect();
        let gone: Vec<Object> =
            self.known.iter().filter(|(k, _)| !fresh.contains_key(*k)).map(|(_, o)| o.clone()).collect();
        for o in &gone {
            self.print(o);
        }
        for (k, o) in &fresh {
            let changed =
                self.known.get(k).is_none_or(|old| old.meta().resource_version != o.meta().resource_version);
            if changed {
                self.print(o);
            }
        }
        std::mem::swap(&mut self.known, &mut fresh);
        Ok(rv)
    }

    /// The objects listed before watching: one aligned table, or a document each.
    fn print_initial(&mut self, objects: &[Object]) {
        if objects.is_empty() {
            return;
        }
        if self.args.output.is_textual() && self.args.output != Format::Name {
            let values: Vec<_> = objects.iter().map(printers::to_value).collect();
            emit(&self.printer.rows(&values, SystemTime::now()));
            self.printed = true;
        } else {
            for o in objects {
                self.print(o);
            }
        }
    }

    fn print(&mut self, o: &Object) {
        match self.args.output {
            Format::Table | Format::Wide => {
                emit(&self.printer.rows(&[printers::to_value(o)], SystemTime::now()));
            }
            Format::Name => say(printers::name_of(o)),
            Format::Yaml => {
                let doc = serialize_one(o, Format::Yaml);
                emit(if self.printed { &doc } else { doc.trim_start_matches("---\n") });
            }
            Format::Json => emit(&serialize_one(o, Format::Json)),
        }
        self.printed = true;
    }
}

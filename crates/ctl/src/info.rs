//! `navctl version` and `navctl api-resources`, from the api-server's Discovery.

use crate::context::{Context, Outcome, emit, say};
use crate::errors;
use crate::printers::table::Table;

pub const CLIENT_VERSION: &str = concat!("v", env!("CARGO_PKG_VERSION"));

pub async fn version(ctx: &Context) -> anyhow::Result<Outcome> {
    say(format!("Client Version: {CLIENT_VERSION}"));
    let client = ctx.client().await?;
    let d = client.discovery().await.map_err(|e| errors::general(e, ctx.server()))?;
    say(format!("Server Version: {}", d.server_version));
    Ok(Outcome::Success)
}

pub async fn api_resources(ctx: &Context) -> anyhow::Result<Outcome> {
    let client = ctx.client().await?;
    let d = client.discovery().await.map_err(|e| errors::general(e, ctx.server()))?;
    let mut resources = d.resources;
    resources.sort_by(|a, b| a.plural.cmp(&b.plural));
    let mut rows =
        vec![["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"].map(String::from).to_vec()];
    for r in &resources {
        rows.push(vec![
            r.plural.clone(),
            r.short_names.join(","),
            r.api_version.clone(),
            r.namespaced.to_string(),
            r.kind.clone(),
        ]);
    }
    emit(&Table::new().format(&rows));
    Ok(Outcome::Success)
}

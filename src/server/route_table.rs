//! [`RouteTable`]: the one way routes reach the server's router, so that what is served is
//! recorded beside what is documented.
//!
//! Every route goes in with [`RouteTable::route`] (or [`RouteTable::nest_folder`] for a
//! folder), which adds it to the axum router, records its path as served, and keeps the
//! OpenAPI operations given for it. A route added with no operation is still recorded, so the
//! test that compares the served routes with the OpenAPI document (probing the real router for
//! the methods each path answers) catches it.

use axum::Router;
use axum::routing::MethodRouter;

use crate::openapi::RouteDoc;

/// Routes under construction: the router, the paths it serves, and their documentation.
#[derive(Default)]
pub(crate) struct RouteTable {
    router: Router,
    /// Every path given to the router (without the API prefix), as a route template.
    served: Vec<String>,
    docs: Vec<RouteDoc>,
}

impl RouteTable {
    /// Serves `route` at `path`, documented by `docs`.
    pub(crate) fn route(
        &mut self,
        path: &str,
        route: MethodRouter,
        docs: impl IntoIterator<Item = RouteDoc>,
    ) {
        self.router = std::mem::take(&mut self.router).route(path, route);
        self.served.push(path.to_owned());
        self.docs.extend(docs);
    }

    /// Serves the files of a folder under `path` (at `{path}/{file}`, never a file a link
    /// leads to outside the folder), documented by `docs`.
    pub(crate) fn nest_folder(
        &mut self,
        path: &str,
        folder: &std::path::Path,
        docs: impl IntoIterator<Item = RouteDoc>,
    ) {
        self.router =
            std::mem::take(&mut self.router).nest_service(path, super::folder::serve(folder));
        self.served.push(format!("{path}/{{file}}"));
        self.docs.extend(docs);
    }

    /// Records a path that the caller serves beside this table, with its documentation: the
    /// UI's page (mounted at `<prefix>/`) and the API description routes (added once the
    /// document they serve is complete).
    pub(crate) fn served_elsewhere(
        &mut self,
        path: &str,
        docs: impl IntoIterator<Item = RouteDoc>,
    ) {
        self.served.push(path.to_owned());
        self.docs.extend(docs);
    }

    /// Adds another table's routes.
    pub(crate) fn merge(&mut self, other: RouteTable) {
        self.router = std::mem::take(&mut self.router).merge(other.router);
        self.served.extend(other.served);
        self.docs.extend(other.docs);
    }

    /// The documentation of every route so far.
    pub(crate) fn docs(&self) -> &[RouteDoc] {
        &self.docs
    }

    /// The documentation, to adjust (access control adds its statuses).
    pub(crate) fn docs_mut(&mut self) -> &mut [RouteDoc] {
        &mut self.docs
    }

    /// The router and the paths it serves.
    pub(crate) fn into_parts(self) -> (Router, Vec<String>) {
        (self.router, self.served)
    }
}

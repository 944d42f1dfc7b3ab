//! Why a router could not be built from stored routes and services.

/// A stored route or service the router cannot compile. Each names the entity, the field and the
/// reason, so the snapshot builder can report it and keep the previous router serving.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// A field holds a value of the wrong shape.
    #[error("{entity} {id}: field '{field}': {reason}")]
    Field {
        /// `route` or `service`.
        entity: &'static str,
        /// The entity's id (or `?` when the id itself is unusable).
        id: String,
        /// The field name.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A route points at a service that is not in the configuration.
    #[error("route {route}: service {service} not found")]
    ServiceNotFound {
        /// The route's id.
        route: String,
        /// The missing service's id.
        service: String,
    },
    /// Two routes share an id.
    #[error("route {0}: duplicate id")]
    DuplicateRoute(String),
    /// A regex path or `~*` header value does not compile.
    #[error("route {route}: invalid regex '{pattern}': {source}")]
    Regex {
        /// The route's id.
        route: String,
        /// The pattern as stored.
        pattern: String,
        /// The compiler's complaint.
        #[source]
        source: Box<regex::Error>,
    },
    /// An HTTP route with no attribute to match on.
    #[error("route {0}: no methods, hosts, headers, paths or snis to match on")]
    NoMatchers(String),
    /// A stream route with no attribute to match on.
    #[error("route {0}: no sources, destinations or snis to match on")]
    NoStreamMatchers(String),
}

impl RouterError {
    pub(crate) fn route_field(id: &str, field: &'static str, reason: impl Into<String>) -> Self {
        RouterError::Field {
            entity: "route",
            id: id.to_owned(),
            field,
            reason: reason.into(),
        }
    }

    pub(crate) fn service_field(id: &str, field: &'static str, reason: impl Into<String>) -> Self {
        RouterError::Field {
            entity: "service",
            id: id.to_owned(),
            field,
            reason: reason.into(),
        }
    }
}

//! Typed reading of stored entity JSON: the field accessors whose errors name the entity, the
//! field and the reason, and the services routes refer to.

use std::collections::HashMap;

use serde_json::Value;

use super::error::RouterError;
use super::model::{Protocol, ServiceInfo};
use super::Doc;

/// Typed access to one stored entity's fields, with errors that name the entity and field.
pub(crate) struct Fields<'d> {
    pub doc: &'d Doc,
    pub entity: &'static str,
    pub id: &'d str,
}

impl<'d> Fields<'d> {
    pub fn err(&self, field: &'static str, reason: impl Into<String>) -> RouterError {
        if self.entity == "route" {
            RouterError::route_field(self.id, field, reason)
        } else {
            RouterError::service_field(self.id, field, reason)
        }
    }

    /// The value, with JSON `null` read as absent.
    pub fn get(&self, field: &str) -> Option<&'d Value> {
        self.doc.get(field).filter(|v| !v.is_null())
    }

    pub fn str_opt(&self, field: &'static str) -> Result<Option<&'d str>, RouterError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.err(field, "expected a string")),
        }
    }

    pub fn bool_or(&self, field: &'static str, default: bool) -> Result<bool, RouterError> {
        match self.get(field) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(self.err(field, "expected a boolean")),
        }
    }

    pub fn int_opt(&self, field: &'static str) -> Result<Option<i64>, RouterError> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| self.err(field, "expected an integer")),
        }
    }

    pub fn int_in<T: TryFrom<i64>>(
        &self,
        field: &'static str,
        default: T,
    ) -> Result<T, RouterError> {
        match self.int_opt(field)? {
            None => Ok(default),
            Some(n) => T::try_from(n).map_err(|_| self.err(field, format!("{n} is out of range"))),
        }
    }

    /// An array of strings; `None` when absent (an empty array is `Some`: it matters to the
    /// priority of `hosts`).
    pub fn strings(&self, field: &'static str) -> Result<Option<Vec<&'d str>>, RouterError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .ok_or_else(|| self.err(field, "expected strings"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(self.err(field, "expected an array of strings")),
        }
    }

    /// A foreign key `{"id": "..."}`.
    pub fn foreign_id(&self, field: &'static str) -> Result<Option<&'d str>, RouterError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Object(o)) => match o.get("id") {
                Some(Value::String(id)) => Ok(Some(id)),
                _ => Err(self.err(field, "expected {\"id\": \"<uuid>\"}")),
            },
            Some(_) => Err(self.err(field, "expected {\"id\": \"<uuid>\"}")),
        }
    }

    pub fn is_set(&self, field: &str) -> bool {
        match self.get(field) {
            None => false,
            Some(Value::Array(a)) => !a.is_empty(),
            Some(Value::Object(o)) => !o.is_empty(),
            Some(_) => true,
        }
    }
}

pub(crate) fn entity_id<'d>(doc: &'d Doc, entity: &'static str) -> Result<&'d str, RouterError> {
    match doc.get("id") {
        Some(Value::String(id)) => Ok(id),
        _ => Err(RouterError::Field {
            entity,
            id: "?".into(),
            field: "id",
            reason: "expected a string".into(),
        }),
    }
}

/// Reads a stored service document.
pub(crate) fn parse_service(doc: &Doc) -> Result<ServiceInfo, RouterError> {
    let id = entity_id(doc, "service")?;
    let f = Fields {
        doc,
        entity: "service",
        id,
    };
    let protocol = match f.str_opt("protocol")? {
        None => Protocol::Http,
        Some(p) => Protocol::parse(p)
            .ok_or_else(|| f.err("protocol", format!("unknown protocol '{p}'")))?,
    };
    let host = f
        .str_opt("host")?
        .ok_or_else(|| f.err("host", "required field missing"))?;
    let default_port = if matches!(protocol, Protocol::Https | Protocol::Wss) {
        443
    } else {
        80
    };
    let ca_certificates = f
        .strings("ca_certificates")?
        .unwrap_or_default()
        .into_iter()
        .map(str::to_owned)
        .collect();
    Ok(ServiceInfo {
        id: id.to_owned(),
        name: f.str_opt("name")?.map(str::to_owned),
        protocol,
        host: host.to_owned(),
        port: f.int_in("port", default_port)?,
        path: f.str_opt("path")?.map(str::to_owned),
        connect_timeout: f.int_in("connect_timeout", 60_000)?,
        write_timeout: f.int_in("write_timeout", 60_000)?,
        read_timeout: f.int_in("read_timeout", 60_000)?,
        retries: f.int_in("retries", 5)?,
        tls_verify: match f.get("tls_verify") {
            None => None,
            Some(_) => Some(f.bool_or("tls_verify", false)?),
        },
        tls_verify_depth: match f.int_opt("tls_verify_depth")? {
            None => None,
            Some(_) => Some(f.int_in("tls_verify_depth", 0)?),
        },
        ca_certificates,
        client_certificate: f.foreign_id("client_certificate")?.map(str::to_owned),
    })
}

/// Services by id, parsed the first time a route refers to them.
pub(crate) struct Services<'d> {
    docs: HashMap<&'d str, &'d Doc>,
    parsed: HashMap<&'d str, Option<usize>>,
    /// The services routes use, in the order first referred to.
    pub list: Vec<ServiceInfo>,
    /// Whether each parsed service is enabled, by index into `list`.
    enabled: Vec<bool>,
}

impl<'d> Services<'d> {
    pub fn new(services: &'d [Doc]) -> Result<Services<'d>, RouterError> {
        let mut docs = HashMap::with_capacity(services.len());
        for doc in services {
            docs.insert(entity_id(doc, "service")?, doc);
        }
        Ok(Services {
            docs,
            parsed: HashMap::new(),
            list: Vec::new(),
            enabled: Vec::new(),
        })
    }

    /// The service `id` (index, enabled), or `None` when it cannot serve HTTP routes.
    pub fn resolve(
        &mut self,
        route: &str,
        id: &'d str,
        warnings: &mut Vec<String>,
    ) -> Result<Option<(usize, bool)>, RouterError> {
        if let Some(known) = self.parsed.get(id) {
            return Ok(known.map(|i| (i, self.enabled[i])));
        }
        let doc = self
            .docs
            .get(id)
            .copied()
            .ok_or_else(|| RouterError::ServiceNotFound {
                route: route.to_owned(),
                service: id.to_owned(),
            })?;
        let service = parse_service(doc)?;
        let slot = if service.protocol.is_http() {
            let enabled = Fields {
                doc,
                entity: "service",
                id,
            }
            .bool_or("enabled", true)?;
            self.list.push(service);
            self.enabled.push(enabled);
            Some(self.list.len() - 1)
        } else {
            // Kong routes such a route as if it had no service, with a warning.
            warnings.push(format!(
                "service {id} with protocol '{}' cannot serve HTTP route {route}; the route is \
                 routed without a service",
                service.protocol.as_str()
            ));
            None
        };
        self.parsed.insert(id, slot);
        Ok(slot.map(|i| (i, self.enabled[i])))
    }
}

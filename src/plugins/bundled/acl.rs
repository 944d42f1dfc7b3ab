//! `acl` (priority 950, after the auth plugins): lets a request through by the groups of its
//! consumer (`acls` entities) or the groups an external authenticator established, against an
//! allow list or a deny list.
//!
//! No consumer and no authenticated groups: 401 `Unauthorized` (403 when a credential exists
//! without a consumer). A consumer without groups under an allow list is treated the same way;
//! a deny list treats it as having no groups. Blocked: 403 `You cannot consume this service`.
//! Allowed: the groups go upstream in `X-Consumer-Groups` (consumer groups) or
//! `X-Authenticated-Groups` (external groups), unless `hide_groups_header`.

use std::sync::Arc;

use http::header::{HeaderName, HeaderValue};
use http::StatusCode;
use serde_json::{json, Value};

use super::auth;
use crate::plugins::{BuildEnv, Ctx, Kind, Plugin, PluginError, Step};
use crate::store::schema::{
    Context, Doc, EntityCheck, Field, Path, PluginSchema, Record, SchemaErrors,
};

/// The kind.
pub struct Acl;

static X_CONSUMER_GROUPS: HeaderName = HeaderName::from_static("x-consumer-groups");
static X_AUTHENTICATED_GROUPS: HeaderName = HeaderName::from_static("x-authenticated-groups");

const BLOCKED: &str = "You cannot consume this service";

/// One configured instance.
struct Instance {
    /// Whether `groups` is a deny list (otherwise an allow list).
    deny: bool,
    groups: Vec<String>,
    hide_groups_header: bool,
    always_use_authenticated_groups: bool,
}

/// Exactly one of `allow` / `deny` (Kong's `only_one_of` and `at_least_one_of` on the plugin).
fn one_list(doc: &Doc, _: &Context<'_>, _: &Path, errs: &mut SchemaErrors) {
    let set = |f: &str| {
        doc.get(f)
            .and_then(Value::as_array)
            .is_some_and(|l| !l.is_empty())
    };
    let count = usize::from(set("allow")) + usize::from(set("deny"));
    if count != 1 {
        errs.entity("exactly one of these fields must be non-empty: 'config.allow', 'config.deny'");
    }
    if count == 0 {
        errs.entity(
            "at least one of these fields must be non-empty: 'config.allow', 'config.deny'",
        );
    }
}

impl Kind for Acl {
    fn name(&self) -> &'static str {
        "acl"
    }

    fn priority(&self) -> i32 {
        950
    }

    fn schema(&self) -> PluginSchema {
        let config = Record::new(vec![
            ("allow", Field::array(Field::string())),
            ("deny", Field::array(Field::string())),
            (
                "hide_groups_header",
                Field::boolean().required().default(json!(false)),
            ),
            (
                "always_use_authenticated_groups",
                Field::boolean().required().default(json!(false)),
            ),
        ])
        .checks(vec![EntityCheck::Custom(one_list)]);
        PluginSchema {
            name: self.name().into(),
            config,
            protocols: None,
            no_consumer: true,
            no_route: false,
            no_service: false,
        }
    }

    fn lookups(&self) -> &'static [(&'static str, &'static str)] {
        &[("acls", "consumer")]
    }

    fn build(&self, config: &Doc, _: &BuildEnv) -> Result<Arc<dyn Plugin>, String> {
        let deny = auth::strings(config, "deny");
        let (deny, groups) = if deny.is_empty() {
            (false, auth::strings(config, "allow"))
        } else {
            (true, deny)
        };
        Ok(Arc::new(Instance {
            deny,
            groups,
            hide_groups_header: auth::flag(config, "hide_groups_header", false),
            always_use_authenticated_groups: auth::flag(
                config,
                "always_use_authenticated_groups",
                false,
            ),
        }))
    }
}

impl Instance {
    /// Whether a member of `groups` is blocked.
    fn blocks<'g>(&self, groups: impl IntoIterator<Item = &'g str>) -> bool {
        let listed = groups
            .into_iter()
            .any(|g| self.groups.iter().any(|l| l == g));
        listed == self.deny
    }

    /// Lets the request through with `groups` in `header`, unless hidden.
    fn pass(&self, ctx: &mut Ctx, header: &HeaderName, groups: &[&str]) {
        if self.hide_groups_header {
            return;
        }
        if let Ok(v) = HeaderValue::from_str(&groups.join(", ")) {
            ctx.request.headers.insert(header.clone(), v);
        }
    }

    fn refuse(ctx: &mut Ctx, status: StatusCode, message: &str) {
        let exit = ctx.error(status, message);
        ctx.exit(exit);
    }

    /// 403 when a credential was presented, 401 otherwise.
    fn unidentified(ctx: &mut Ctx) {
        if ctx.credential().is_some() {
            Instance::refuse(ctx, StatusCode::FORBIDDEN, BLOCKED);
        } else {
            Instance::refuse(ctx, StatusCode::UNAUTHORIZED, "Unauthorized");
        }
    }

    /// Applies the list to externally authenticated groups.
    fn by_authenticated_groups(&self, ctx: &mut Ctx, groups: Vec<String>) {
        let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
        if self.blocks(groups.iter().copied()) {
            Instance::refuse(ctx, StatusCode::FORBIDDEN, BLOCKED);
        } else {
            self.pass(ctx, &X_AUTHENTICATED_GROUPS, &groups);
        }
    }
}

/// Groups an external authenticator established.
fn external(ctx: &Ctx) -> Option<Vec<String>> {
    ctx.authenticated_groups().map(<[String]>::to_vec)
}

impl Plugin for Instance {
    fn access<'a>(&'a self, ctx: &'a mut Ctx) -> Result<Step<'a>, PluginError> {
        let consumer_id = ctx.consumer_id().map(str::to_owned).or_else(|| {
            ctx.credential()
                .and_then(|c| c.consumer_id.as_deref().map(str::to_owned))
        });
        let Some(consumer_id) = consumer_id else {
            match external(ctx) {
                Some(groups) => self.by_authenticated_groups(ctx, groups),
                None => Instance::unidentified(ctx),
            }
            return Ok(Step::Done);
        };
        // External groups replace an anonymous consumer's (or always, when configured).
        if ctx.credential().is_none() || self.always_use_authenticated_groups {
            if let Some(groups) = external(ctx) {
                self.by_authenticated_groups(ctx, groups);
                return Ok(Step::Done);
            }
        }
        let snapshot = ctx.snapshot().clone();
        let groups: Vec<&str> = snapshot
            .index
            .find("acls", "consumer", &consumer_id)
            .iter()
            .filter_map(|acl| acl.get("group").and_then(Value::as_str))
            .collect();
        if groups.is_empty() && !self.deny {
            Instance::unidentified(ctx);
        } else if self.blocks(groups.iter().copied()) {
            Instance::refuse(ctx, StatusCode::FORBIDDEN, BLOCKED);
        } else {
            self.pass(ctx, &X_CONSUMER_GROUPS, &groups);
        }
        Ok(Step::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(deny: bool, groups: &[&str]) -> Instance {
        Instance {
            deny,
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            hide_groups_header: false,
            always_use_authenticated_groups: false,
        }
    }

    #[test]
    fn allow_and_deny_lists() {
        let allow = instance(false, &["admin", "dev"]);
        assert!(!allow.blocks(["dev"]));
        assert!(allow.blocks(["ops"]));
        assert!(allow.blocks([]));
        let deny = instance(true, &["banned"]);
        assert!(deny.blocks(["ops", "banned"]));
        assert!(!deny.blocks(["ops"]));
        assert!(!deny.blocks([]));
    }
}

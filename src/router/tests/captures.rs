//! URI captures of regex paths.

use serde_json::json;

use super::*;

#[test]
fn captures_named_and_numbered_groups_with_the_whole_match() {
    let r = router(vec![route(
        1,
        json!({"paths": [r"~/users/(?P<user_id>\d+)/profile/?(?P<scope>[a-z]*)"]}),
    )]);
    let req = get("x", "/users/1984/profile");
    let m = r.find(&req.info()).expect("matches");
    let c = m.captures.expect("captures");
    assert_eq!(c.get(0), Some("/users/1984/profile"));
    assert_eq!(c.get(1), Some("1984"));
    assert_eq!(c.name("user_id"), Some("1984"));
    assert_eq!(c.get(2), Some(""));
    assert_eq!(c.name("scope"), Some(""));
    assert_eq!(c.name("stripped_uri"), None);
    assert_eq!(c.len(), 3);
    let named: Vec<_> = c.named().collect();
    assert_eq!(named, vec![("user_id", "1984"), ("scope", "")]);

    let req = get("x", "/users/1984/profile/email");
    let m = r.find(&req.info()).expect("matches");
    let c = m.captures.expect("captures");
    assert_eq!(c.get(2), Some("email"));
    assert_eq!(c.name("scope"), Some("email"));
}

#[test]
fn captures_accept_the_angle_bracket_group_syntax() {
    let r = router(vec![route(1, json!({"paths": [r"~/(?<kind>\w+)/(\d+)$"]}))]);
    let req = get("x", "/orders/12");
    let m = r.find(&req.info()).expect("matches");
    let c = m.captures.expect("captures");
    assert_eq!(c.name("kind"), Some("orders"));
    assert_eq!(c.get(2), Some("12"));
}

#[test]
fn captures_leave_out_groups_that_did_not_take_part() {
    let r = router(vec![route(
        1,
        json!({"paths": [r"~/(users/)?1984/(?<subpath>profile)$"]}),
    )]);
    let req = get("x", "/1984/profile");
    let m = r.find(&req.info()).expect("matches");
    let c = m.captures.expect("captures");
    assert_eq!(c.get(1), None);
    assert_eq!(c.name("subpath"), Some("profile"));
    assert_eq!(c.name("scope"), None);
    let numbered: Vec<_> = c.numbered().map(|(i, _)| i).collect();
    assert_eq!(numbered, vec![0, 2]);
}

#[test]
fn captures_see_the_normalized_path() {
    let r = router(vec![route(
        1,
        json!({"paths": [r"~/users/(?P<fullname>[a-zA-Z\s\d%]+)/profile/?(?P<scope>[a-z]*)"]}),
    )]);
    let path = crate::router::normalize_path("/users/%6aohn%20doe/profile")
        .expect("utf-8")
        .into_owned();
    let req = get("x", &path);
    let m = r.find(&req.info()).expect("matches");
    let c = m.captures.expect("captures");
    assert_eq!(c.name("fullname"), Some("john doe"));
    assert_eq!(c.get(0), Some("/users/john doe/profile"));
}

#[test]
fn captures_absent_for_prefix_paths() {
    let r = router(vec![route(1, json!({"paths": ["/hello"]}))]);
    let req = get("x", "/hello/world");
    let m = r.find(&req.info()).expect("matches");
    assert!(m.captures.is_none());
    assert_eq!(m.upstream_path, "/world");
}

#[test]
fn captures_absent_for_regex_without_groups() {
    let r = router(vec![route(1, json!({"paths": [r"~/users/\d+/profile"]}))]);
    let req = get("x", "/users/1984/profile");
    let m = r.find(&req.info()).expect("matches");
    assert!(m.captures.is_none());
    assert_eq!(m.matched_path, Some("/users/1984/profile"));
}

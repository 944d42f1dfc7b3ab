//! The PostgreSQL test harness itself: a throw-away cluster (or `KONG_TEST_PG_URL`) that
//! answers queries and hands out isolated databases.

use crate::support::pg::require_pg;

#[test]
fn postgres_harness_gives_isolated_databases() {
    let Some(pg) = require_pg() else { return };
    let a = pg.create_database("iso_a").expect("database a");
    let b = pg.create_database("iso_b").expect("database b");
    assert_eq!(pg.psql(&a, "select 1").expect("query"), "1");
    pg.psql(&a, "create table only_in_a (x int)")
        .expect("create");
    let seen = pg
        .psql(
            &b,
            "select count(*) from information_schema.tables where table_name = 'only_in_a'",
        )
        .expect("query b");
    assert_eq!(seen, "0", "databases are isolated");
}

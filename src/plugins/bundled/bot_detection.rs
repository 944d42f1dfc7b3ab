//! `bot-detection` (priority 2500): refuses requests whose `User-Agent` looks like a bot.
//!
//! The agent (trimmed) is checked against `allow` first (a match lets it through), then
//! `deny`, then a built-in list of crawler, monitor and HTTP-library patterns; a deny or bot
//! match is answered `403 Forbidden`. A request without `User-Agent` passes; one with several
//! gets `400 Only one User-Agent header allowed`. Each list is one compiled [`RegexSet`], so an
//! agent costs one scan per list.

use std::sync::{Arc, OnceLock};

use http::header::USER_AGENT;
use http::StatusCode;
use regex::RegexSet;
use serde_json::{json, Value};

use crate::plugins::{BuildEnv, Ctx, Kind, Plugin, PluginError, Step};
use crate::store::schema::{Doc, Field, PluginSchema, Record};

/// The kind.
pub struct BotDetection;

/// Built-in patterns for agents that announce themselves as automated: crawlers and spiders,
/// link-preview fetchers, uptime monitors, archivers, and common HTTP client libraries. Browsers
/// and command-line tools people use by hand (curl, wget, HTTPie) are not on it.
const BOTS: &[&str] = &[
    // Anything calling itself a bot, crawler, spider, scraper, archiver or indexer.
    r"(?i)[a-z0-9_.-]*(?:bot|crawler|crawling|spider|scraper|archiver|indexer)\b",
    r"(?i)\b[a-z0-9_-]*(?:bot|spider|crawl)[a-z0-9_-]*/\d",
    // Search engines and their helpers.
    r"(?i)\b(?:slurp|teoma|yeti|sogou|exabot|ia_archiver|mediapartners-google|adsbot-google|google-read-aloud|bingpreview|yandex[a-z]*|baiduspider|duckduckgo-favicons-bot|petalbot|applebot|seznambot|qwantify)\b",
    // Link previews and social fetchers.
    r"(?i)\b(?:facebookexternalhit|facebookcatalog|meta-externalagent|twitterbot|linkedinbot|slackbot|slack-imgproxy|discordbot|telegrambot|whatsapp|skypeuripreview|embedly|pinterest|redditbot|vkshare|w3c_validator)\b",
    // Monitors, SEO tools and archivers.
    r"(?i)\b(?:pingdom|uptimerobot|statuscake|site24x7|newrelicpinger|datadog agent|catchpoint|gtmetrix|pagespeed|lighthouse|semrush|ahrefs|mj12bot|dotbot|rogerbot|screaming frog|heritrix|archive\.org_bot|nutch|scrapy|httrack|wget-bot)\b",
    // HTTP client libraries (scripts rather than people).
    r"(?i)\b(?:python-urllib|python-requests|python-httpx|aiohttp|go-http-client|java/\d|apache-httpclient|okhttp|jakarta commons-httpclient|libwww-perl|lwp::simple|php/\d|guzzlehttp|ruby|node-fetch|axios|undici|got \(|reqwest|winhttp|libcurl-agent)\b",
    // Headless browsers and automation.
    r"(?i)\b(?:headlesschrome|phantomjs|puppeteer|playwright|selenium|webdriver|slimerjs)\b",
];

fn builtin() -> &'static RegexSet {
    static SET: OnceLock<RegexSet> = OnceLock::new();
    // The patterns are constants checked by this module's tests; an empty set is the
    // (unreachable) fallback rather than a panic on a request.
    SET.get_or_init(|| RegexSet::new(BOTS).unwrap_or_else(|_| RegexSet::empty()))
}

/// One configured instance.
struct Instance {
    allow: RegexSet,
    deny: RegexSet,
}

fn is_regex(v: &Value) -> Result<(), String> {
    let s = v.as_str().unwrap_or_default();
    regex::Regex::new(s)
        .map(|_| ())
        .map_err(|_| format!("not a valid regex: {s}"))
}

fn set(config: &Doc, field: &str) -> Result<RegexSet, String> {
    let patterns = config
        .get(field)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>())
        .unwrap_or_default();
    RegexSet::new(patterns).map_err(|e| format!("{field}: {e}"))
}

impl Kind for BotDetection {
    fn name(&self) -> &'static str {
        "bot-detection"
    }

    fn priority(&self) -> i32 {
        2500
    }

    fn schema(&self) -> PluginSchema {
        let regexes =
            || Field::array(Field::string().custom("is_regex", is_regex)).default(json!([]));
        PluginSchema {
            name: self.name().into(),
            config: Record::new(vec![("allow", regexes()), ("deny", regexes())]),
            protocols: None,
            no_consumer: true,
            no_route: false,
            no_service: false,
        }
    }

    fn build(&self, config: &Doc, _env: &BuildEnv) -> Result<Arc<dyn Plugin>, String> {
        Ok(Arc::new(Instance {
            allow: set(config, "allow")?,
            deny: set(config, "deny")?,
        }))
    }
}

/// What an agent is.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Allowed,
    Denied,
}

impl Instance {
    fn examine(&self, agent: &str) -> Verdict {
        let agent = agent.trim();
        if self.allow.is_match(agent) {
            return Verdict::Allowed;
        }
        if self.deny.is_match(agent) || builtin().is_match(agent) {
            return Verdict::Denied;
        }
        Verdict::Allowed
    }
}

impl Plugin for Instance {
    fn access<'a>(&'a self, ctx: &'a mut Ctx) -> Result<Step<'a>, PluginError> {
        let mut agents = ctx.request.headers.get_all(USER_AGENT).iter();
        let Some(agent) = agents.next() else {
            return Ok(Step::Done);
        };
        if agents.next().is_some() {
            let exit = ctx.error(
                StatusCode::BAD_REQUEST,
                "Only one User-Agent header allowed",
            );
            ctx.exit(exit);
            return Ok(Step::Done);
        }
        let agent = String::from_utf8_lossy(agent.as_bytes());
        if self.examine(&agent) == Verdict::Denied {
            let exit = ctx.error(StatusCode::FORBIDDEN, "Forbidden");
            ctx.exit(exit);
        }
        Ok(Step::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(allow: &[&str], deny: &[&str]) -> Instance {
        Instance {
            allow: RegexSet::new(allow).expect("allow"),
            deny: RegexSet::new(deny).expect("deny"),
        }
    }

    #[test]
    fn the_builtin_list_compiles_and_tells_bots_from_people() {
        assert_eq!(RegexSet::new(BOTS).map(|s| s.len()).ok(), Some(BOTS.len()));
        let plain = instance(&[], &[]);
        for bot in [
            "Googlebot/2.1 (+http://www.google.com/bot.html)",
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
            "Twitterbot/1.0",
            "python-requests/2.31.0",
            "Go-http-client/1.1",
            "Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)",
            "Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/120.0 Safari/537.36",
            "Scrapy/2.11 (+https://scrapy.org)",
        ] {
            assert_eq!(plain.examine(bot), Verdict::Denied, "{bot}");
        }
        for person in [
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_5) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/50.0.2661.102 Safari/537.36",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
            "curl/7.43.0",
            "Wget/1.21.4",
            "HTTPie/3.2.2",
            "helloworld",
        ] {
            assert_eq!(plain.examine(person), Verdict::Allowed, "{person}");
        }
    }

    #[test]
    fn allow_beats_deny_and_the_builtin_list() {
        let i = instance(&["facebookexternalhit"], &["hello"]);
        assert_eq!(i.examine("facebookexternalhit/1.1"), Verdict::Allowed);
        assert_eq!(i.examine("  helloworld  "), Verdict::Denied);
        assert_eq!(i.examine("Googlebot/2.1"), Verdict::Denied);
    }
}

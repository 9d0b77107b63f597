//! Metadata (CMDB) look-ups: the datacenter of each instance, and the
//! cluster's domain (its VIP) and alias, read from a metadata database with
//! query templates like the earlier tool's `DetectDataCenterQuery`,
//! `DetectClusterDomainQuery` and `DetectClusterAliasQuery`.
//!
//! A template names the instance being looked up with placeholders, and
//! their values are always **bound parameters** of a prepared statement,
//! never pasted into the SQL text, so a host name can never change the
//! query. Accepted placeholders:
//!
//! - `:host` and `:port` (named; each may appear any number of times);
//! - `{host}` and `{port}`, the earlier tool's spelling, also inside a
//!   quoted string (`'{host}'` becomes one parameter, `'{host}:{port}'`
//!   becomes `CONCAT(?, ':', ?)`);
//! - `?` (positional): one `?` is the host, two are the host then the port.
//!
//! Named and positional placeholders do not mix. Placeholders inside
//! comments, backquoted names and other string text are left alone; any
//! other `:name` or `{name}` is refused, so a typo is not sent as SQL. The
//! answer is the first column of the first row; no row, NULL or an empty
//! string means "not known".

use std::fmt;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Params, Row, Value};
use serde::Serialize;

use super::conn::{self, value_text, Login, SqlError};
use super::instance::addr;

/// What a placeholder stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    /// The instance's host.
    Host,
    /// The instance's port (bound as an integer).
    Port,
}

/// A template that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// `?` together with `:host`/`{host}` placeholders.
    #[error("{template:?}: mixes ? with named placeholders; use one kind")]
    Mixed {
        /// The template.
        template: String,
    },
    /// More than two `?`.
    #[error("{template:?}: {count} ? placeholders; one means the host, two the host and the port")]
    TooManyPositional {
        /// The template.
        template: String,
        /// How many.
        count: usize,
    },
    /// A `:name` or `{name}` that is not host or port.
    #[error("{template:?}: unknown placeholder {name}; use :host and :port (or {{host}} and {{port}})")]
    Unknown {
        /// The template.
        template: String,
        /// The placeholder as written.
        name: String,
    },
    /// A string or comment that does not end.
    #[error("{template:?}: unterminated {what}")]
    Unterminated {
        /// The template.
        template: String,
        /// `string`, `comment` or `quoted name`.
        what: &'static str,
    },
}

/// A query template ready to run as a prepared statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// What the file said.
    pub original: String,
    /// The statement sent to the server, with `?` for each parameter.
    pub sql: String,
    /// What each `?` of [`Self::sql`] is bound to, in order.
    pub params: Vec<Placeholder>,
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

fn ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `{host}` / `{port}` at the start of `s`: the placeholder and its length.
fn brace_placeholder(s: &str) -> Option<(Result<Placeholder, String>, usize)> {
    let inner = s.strip_prefix('{')?;
    let end = inner.find('}')?;
    let name = &inner[..end];
    if name.is_empty() || !name.chars().all(ident_char) {
        return None;
    }
    let which = match name {
        "host" => Ok(Placeholder::Host),
        "port" => Ok(Placeholder::Port),
        _ => Err(format!("{{{name}}}")),
    };
    Some((which, end + 2))
}

impl Template {
    /// Reads a template (see the module docs for the rules).
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let err_unknown = |name: String| TemplateError::Unknown { template: text.to_string(), name };
        let unterminated = |what| TemplateError::Unterminated { template: text.to_string(), what };
        let mut sql = String::with_capacity(text.len());
        let mut named = Vec::new();
        let mut positional = 0usize;
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            match c {
                '\'' | '"' => {
                    // A string literal: find its end (doubled quotes and
                    // backslash escapes stay inside), then look for {host}.
                    let mut chars = rest.char_indices().skip(1).peekable();
                    let mut end = None;
                    while let Some((i, ch)) = chars.next() {
                        if ch == '\\' {
                            chars.next();
                        } else if ch == c {
                            if chars.peek().is_some_and(|(_, n)| *n == c) {
                                chars.next();
                            } else {
                                end = Some(i + 1);
                                break;
                            }
                        }
                    }
                    let end = end.ok_or_else(|| unterminated("string"))?;
                    let literal = &rest[..end];
                    rest = &rest[end..];
                    // Split the text between the quotes, as written, at
                    // each placeholder; the text pieces keep their quotes.
                    let inner = &literal[1..literal.len() - 1];
                    let mut pieces: Vec<String> = Vec::new();
                    let mut found = Vec::new();
                    let mut text_start = 0;
                    let mut i = 0;
                    while let Some(ch) = inner[i..].chars().next() {
                        if ch == '\\' {
                            i += 1 + inner[i + 1..].chars().next().map_or(0, char::len_utf8);
                        } else if let Some((which, len)) = brace_placeholder(&inner[i..]) {
                            found.push(which.map_err(&err_unknown)?);
                            if text_start < i {
                                pieces.push(format!("{c}{}{c}", &inner[text_start..i]));
                            }
                            pieces.push("?".into());
                            i += len;
                            text_start = i;
                        } else {
                            i += ch.len_utf8();
                        }
                    }
                    if found.is_empty() {
                        sql.push_str(literal);
                        continue;
                    }
                    if text_start < inner.len() {
                        pieces.push(format!("{c}{}{c}", &inner[text_start..]));
                    }
                    named.extend(found);
                    if pieces.len() == 1 {
                        sql.push_str(&pieces[0]);
                    } else {
                        sql.push_str(&format!("CONCAT({})", pieces.join(", ")));
                    }
                }
                '`' => {
                    let end = rest[1..].find('`').ok_or_else(|| unterminated("quoted name"))? + 2;
                    sql.push_str(&rest[..end]);
                    rest = &rest[end..];
                }
                '#' => {
                    let end = rest.find('\n').unwrap_or(rest.len());
                    sql.push_str(&rest[..end]);
                    rest = &rest[end..];
                }
                '-' if rest.starts_with("-- ") || rest == "--" || rest.starts_with("--\n") => {
                    let end = rest.find('\n').unwrap_or(rest.len());
                    sql.push_str(&rest[..end]);
                    rest = &rest[end..];
                }
                '/' if rest.starts_with("/*") => {
                    let end = rest[2..].find("*/").ok_or_else(|| unterminated("comment"))? + 4;
                    sql.push_str(&rest[..end]);
                    rest = &rest[end..];
                }
                '?' => {
                    positional += 1;
                    sql.push('?');
                    rest = &rest[1..];
                }
                ':' if rest[1..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') => {
                    let len = rest[1..].find(|c: char| !ident_char(c)).unwrap_or(rest.len() - 1);
                    let name = &rest[1..=len];
                    named.push(match name {
                        "host" => Placeholder::Host,
                        "port" => Placeholder::Port,
                        _ => return Err(err_unknown(format!(":{name}"))),
                    });
                    sql.push('?');
                    rest = &rest[len + 1..];
                }
                '{' if brace_placeholder(rest).is_some() => {
                    let (which, len) = brace_placeholder(rest).expect("checked");
                    named.push(which.map_err(&err_unknown)?);
                    sql.push('?');
                    rest = &rest[len..];
                }
                _ => {
                    sql.push(c);
                    rest = &rest[c.len_utf8()..];
                }
            }
        }
        let params = match (positional, named.is_empty()) {
            (0, _) => named,
            (_, false) => return Err(TemplateError::Mixed { template: text.to_string() }),
            (1, true) => vec![Placeholder::Host],
            (2, true) => vec![Placeholder::Host, Placeholder::Port],
            (count, true) => {
                return Err(TemplateError::TooManyPositional { template: text.to_string(), count })
            }
        };
        Ok(Template { original: text.to_string(), sql, params })
    }

    /// The bound values for the instance `host:port`.
    pub fn values(&self, host: &str, port: u16) -> Vec<Value> {
        self.params
            .iter()
            .map(|p| match p {
                Placeholder::Host => Value::Bytes(host.as_bytes().to_vec()),
                Placeholder::Port => Value::UInt(u64::from(port)),
            })
            .collect()
    }
}

/// The three templates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Queries {
    /// The datacenter of an instance.
    pub datacenter: Option<Template>,
    /// The cluster's domain (its VIP), asked for the primary.
    pub cluster_domain: Option<Template>,
    /// The cluster's alias, asked for the primary.
    pub cluster_alias: Option<Template>,
}

/// Where the metadata database is and what to ask it.
#[derive(Debug, Clone)]
pub struct MetaPlan {
    /// Its host.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// The database the queries run in.
    pub database: Option<String>,
    /// How to log in.
    pub login: Login,
    /// The templates.
    pub queries: Queries,
}

/// One look-up's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Answer {
    /// `HOST:PORT` of the instance it was asked for.
    pub instance: String,
    /// The value (`None`: no row, NULL or empty), or why there is none.
    #[serde(serialize_with = "crate::topology::instance::value_or_error")]
    pub value: Result<Option<String>, String>,
}

impl Answer {
    /// The value when the look-up answered one.
    pub fn found(&self) -> Option<&str> {
        self.value.as_ref().ok()?.as_deref()
    }
}

/// What the metadata database said.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MetaAnswers {
    /// `HOST:PORT` of the database.
    pub database: String,
    /// Why it could not be reached at all.
    pub error: Option<String>,
    /// The datacenter of each instance asked for (when there is a query).
    pub datacenters: Vec<Answer>,
    /// The cluster domain (VIP), asked for the primary.
    pub cluster_domain: Option<Answer>,
    /// The cluster alias, asked for the primary.
    pub cluster_alias: Option<Answer>,
}

/// Runs `template` for `host:port` as a prepared statement with bound
/// values; the first column of the first row.
pub async fn look_up(
    conn: &mut mysql_async::Conn,
    database: &str,
    template: &Template,
    host: &str,
    port: u16,
    limit: Duration,
) -> Result<Option<String>, SqlError> {
    let params = Params::Positional(template.values(host, port));
    let run = conn.exec_first::<Row, _, _>(template.sql.as_str(), params);
    let row = match tokio::time::timeout(limit, run).await {
        Ok(Ok(row)) => row,
        Ok(Err(source)) => {
            return Err(SqlError::Query { addr: database.to_string(), sql: template.sql.clone(), source })
        }
        Err(_) => {
            return Err(SqlError::Timeout {
                addr: database.to_string(),
                after: limit,
                what: template.sql.clone(),
            })
        }
    };
    Ok(row
        .and_then(|row| row.as_ref(0).and_then(value_text))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty()))
}

/// Asks the metadata database the datacenter of each of `instances` and
/// the cluster's domain and alias for `primary`.
pub async fn look_up_all(
    plan: &MetaPlan,
    instances: &[(String, u16)],
    primary: Option<(&str, u16)>,
    limit: Duration,
) -> MetaAnswers {
    let database = addr(&plan.host, plan.port);
    let mut answers = MetaAnswers { database: database.clone(), ..MetaAnswers::default() };
    let mut conn =
        match conn::connect(&plan.login, &plan.host, plan.port, plan.database.as_deref(), limit).await {
            Ok(c) => c,
            Err(e) => {
                answers.error = Some(e.to_string());
                return answers;
            }
        };
    if let Some(t) = &plan.queries.datacenter {
        for (host, port) in instances {
            let value = look_up(&mut conn, &database, t, host, *port, limit).await.map_err(|e| e.to_string());
            answers.datacenters.push(Answer { instance: addr(host, *port), value });
        }
    }
    if let Some((host, port)) = primary {
        for (template, slot) in [
            (&plan.queries.cluster_domain, &mut answers.cluster_domain),
            (&plan.queries.cluster_alias, &mut answers.cluster_alias),
        ] {
            if let Some(t) = template {
                let value =
                    look_up(&mut conn, &database, t, host, port, limit).await.map_err(|e| e.to_string());
                *slot = Some(Answer { instance: addr(host, port), value });
            }
        }
    }
    conn::close(conn).await;
    answers
}

#[cfg(test)]
mod tests {
    use super::*;
    use Placeholder::{Host, Port};

    fn parsed(text: &str) -> (String, Vec<Placeholder>) {
        let t = Template::parse(text).unwrap();
        (t.sql, t.params)
    }

    #[test]
    fn named_placeholders_become_bound_parameters() {
        assert_eq!(
            parsed("SELECT dc FROM hosts WHERE hostname = :host AND port = :port"),
            ("SELECT dc FROM hosts WHERE hostname = ? AND port = ?".into(), vec![Host, Port])
        );
        assert_eq!(
            parsed("SELECT dc FROM h WHERE port=:port AND (name=:host OR alias=:host)"),
            ("SELECT dc FROM h WHERE port=? AND (name=? OR alias=?)".into(), vec![Port, Host, Host])
        );
    }

    #[test]
    fn the_earlier_tools_placeholders_are_bound_too() {
        assert_eq!(
            parsed("SELECT dc FROM hosts WHERE hostname = '{host}' AND port = {port}"),
            ("SELECT dc FROM hosts WHERE hostname = ? AND port = ?".into(), vec![Host, Port])
        );
        assert_eq!(
            parsed("SELECT vip FROM c WHERE member = \"{host}:{port}\""),
            ("SELECT vip FROM c WHERE member = CONCAT(?, \":\", ?)".into(), vec![Host, Port])
        );
        assert_eq!(
            parsed("SELECT a FROM c WHERE m = 'it''s {host}'"),
            ("SELECT a FROM c WHERE m = CONCAT('it''s ', ?)".into(), vec![Host])
        );
    }

    #[test]
    fn positional_placeholders_are_host_then_port() {
        assert_eq!(
            parsed("SELECT dc FROM h WHERE name = ?"),
            ("SELECT dc FROM h WHERE name = ?".into(), vec![Host])
        );
        assert_eq!(parsed("SELECT dc FROM h WHERE name = ? AND port = ?").1, vec![Host, Port]);
        let err = Template::parse("SELECT ? ? ?").unwrap_err();
        assert!(matches!(err, TemplateError::TooManyPositional { count: 3, .. }), "{err}");
        let err = Template::parse("SELECT dc FROM h WHERE name = ? AND port = :port").unwrap_err();
        assert!(matches!(err, TemplateError::Mixed { .. }), "{err}");
    }

    #[test]
    fn text_that_only_looks_like_a_placeholder_is_left_alone() {
        let sql = "SELECT ':host', `a:b`, @x := 1 /* :port ? */ FROM t -- {host}\nWHERE h = :host # ?";
        let (out, params) = parsed(sql);
        assert_eq!(params, vec![Host]);
        assert_eq!(out, sql.replace("h = :host", "h = ?"));
        assert_eq!(parsed("SELECT 'a{b' FROM t").0, "SELECT 'a{b' FROM t");
        assert_eq!(parsed("SELECT 'dc1'").1, vec![], "a constant answer needs no parameter");
    }

    #[test]
    fn unknown_and_broken_templates_are_refused() {
        let err = Template::parse("SELECT dc FROM h WHERE c = :cluster").unwrap_err().to_string();
        assert!(err.contains(":cluster") && err.contains(":host"), "{err}");
        let err = Template::parse("SELECT dc FROM h WHERE c = '{cluster}'").unwrap_err().to_string();
        assert!(err.contains("{cluster}"), "{err}");
        assert!(matches!(Template::parse("SELECT 'x").unwrap_err(), TemplateError::Unterminated { .. }));
        assert!(matches!(Template::parse("SELECT /* x").unwrap_err(), TemplateError::Unterminated { .. }));
    }

    #[test]
    fn a_hostile_host_is_only_ever_a_value() {
        let t = Template::parse("SELECT dc FROM hosts WHERE hostname = '{host}'").unwrap();
        let evil = "x' OR '1'='1";
        assert!(!t.sql.contains(evil));
        assert_eq!(t.values(evil, 3306), vec![Value::Bytes(evil.as_bytes().to_vec())]);
        let t = Template::parse("SELECT dc FROM h WHERE port = :port").unwrap();
        assert_eq!(t.values("h", 3307), vec![Value::UInt(3307)]);
    }
}

//! Text tables: the topology (like orchestrator-client's
//! `topology-tabulated`, with a datacenter column) and the precheck.

use super::instance::{Flavor, Instance, Role, Topology};
use super::precheck::Check;

/// Aligns `rows` under `headers`, two spaces between columns, no trailing
/// blanks.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            let pad = widths.get(i).copied().unwrap_or(0).saturating_sub(cell.chars().count());
            line.push_str(&" ".repeat(pad));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn yes_no(v: Option<bool>, yes: &str, no: &str) -> String {
    match v {
        Some(true) => yes.into(),
        Some(false) => no.into(),
        None => "-".into(),
    }
}

/// The GTID column: MariaDB's strict mode and the replica's `Using_Gtid`;
/// MySQL's `gtid_mode` and auto-positioning.
fn gtid_column(i: &Instance) -> String {
    let using = i.replication.as_ref().and_then(|r| r.using_gtid.as_deref());
    match i.flavor {
        Some(Flavor::MariaDb) => {
            let strict = yes_no(i.gtid.strict_mode, "strict", "non-strict");
            match using {
                Some(u) => format!("{strict},{}", u.to_ascii_lowercase()),
                None => strict,
            }
        }
        Some(Flavor::MySql) => {
            let mode = i.gtid.mode.clone().unwrap_or_else(|| "-".into());
            match using {
                Some(u) => format!("{mode},{}", u.to_ascii_lowercase()),
                None => mode,
            }
        }
        None => "-".into(),
    }
}

/// One row of the topology table.
fn row(i: &Instance) -> Vec<String> {
    let indent = "  ".repeat(i.depth.saturating_sub(1) as usize);
    let name = if i.depth == 0 { i.addr() } else { format!("{indent}+ {}", i.addr()) };
    let dash = || "-".to_string();
    if i.role == Role::Sidecar {
        return vec![
            name,
            "sidecar".into(),
            i.server_id.map_or_else(dash, |s| s.to_string()),
            dash(),
            dash(),
            dash(),
            dash(),
            dash(),
            dash(),
            i.datacenter.clone().unwrap_or_else(dash),
        ];
    }
    let (threads, lag) = match &i.replication {
        Some(r) => (r.threads(), r.seconds_behind.map_or_else(|| "null".into(), |s| format!("{s}s"))),
        None => (dash(), dash()),
    };
    let mut role = i.role.as_str().to_string();
    if i.error.is_some() {
        role.push_str(" (unreadable)");
    }
    vec![
        name,
        role,
        i.server_id.map_or_else(dash, |s| s.to_string()),
        i.version.clone().unwrap_or_else(dash),
        match (i.read_only, i.super_read_only) {
            (Some(true), Some(true)) => "super_ro".into(),
            (ro, _) => yes_no(ro, "ro", "rw"),
        },
        i.binlog_format.clone().unwrap_or_else(dash),
        gtid_column(i),
        threads,
        lag,
        i.datacenter.clone().unwrap_or_else(dash),
    ]
}

/// The topology table, then the problems found (unreadable instances and
/// discovery notes), each on its own line.
pub fn topology(t: &Topology) -> String {
    let headers = ["INSTANCE", "ROLE", "SERVER_ID", "VERSION", "RO", "BINLOG", "GTID", "IO/SQL", "LAG", "DC"];
    let rows: Vec<Vec<String>> = t.instances.iter().map(row).collect();
    let mut out = render(&headers, &rows);
    if let Some(co) = &t.co_primary {
        out.push_str(&format!("dual-primary: {} and {co} replicate from each other\n", t.primary));
    }
    for i in &t.instances {
        if let Some(e) = &i.error {
            out.push_str(&format!("{}: {e}\n", i.addr()));
        }
    }
    for note in &t.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out
}

/// The precheck table and its verdict.
pub fn precheck(checks: &[Check]) -> String {
    let rows: Vec<Vec<String>> = checks
        .iter()
        .map(|c| {
            let result = match (c.passed, c.required) {
                (true, _) => "PASS",
                (false, true) => "FAIL",
                (false, false) => "WARN",
            };
            vec![c.name.to_string(), result.to_string(), c.value.clone(), c.detail.clone()]
        })
        .collect();
    let mut out = render(&["CHECK", "RESULT", "VALUE", "DETAIL"], &rows);
    let failed: Vec<&str> = checks.iter().filter(|c| c.required && !c.passed).map(|c| c.name).collect();
    if failed.is_empty() {
        out.push_str("precheck passed\n");
    } else {
        out.push_str(&format!("precheck FAILED: {}\n", failed.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::candidates::tests::cluster;
    use crate::topology::instance::FoundBy;

    #[test]
    fn aligned_without_trailing_blanks() {
        let out = render(&["A", "BB"], &[vec!["xyz".into(), "".into()], vec!["x".into(), "long".into()]]);
        assert_eq!(out, "A    BB\nxyz\nx    long\n");
    }

    #[test]
    fn the_topology_table() {
        let mut t = cluster();
        let mut side = Instance::new("gapless@side", 0, Role::Sidecar, FoundBy::SlaveHosts);
        side.server_id = Some(4242);
        side.depth = 1;
        side.parent = Some("h:1".into());
        t.instances.push(side);
        t.instances[3].error = Some("h:4: cannot connect: refused".into());
        let out = topology(&t);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("INSTANCE") && lines[0].ends_with("DC"), "{out}");
        let cells = |l: &str| l.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        assert_eq!(
            cells(lines[1]),
            ["h:1", "primary", "1", "10.11.6-MariaDB-log", "rw", "ROW", "strict", "-", "-", "dc1"]
        );
        assert_eq!(
            cells(lines[2]),
            [
                "+",
                "h:2",
                "replica",
                "2",
                "10.11.6-MariaDB-log",
                "ro",
                "ROW",
                "strict,slave_pos",
                "Yes/Yes",
                "0s",
                "dc1"
            ]
        );
        assert!(lines[4].contains("replica (unreadable)"), "{out}");
        assert_eq!(cells(lines[5])[..4], ["+", "gapless@side:0", "sidecar", "4242"]);
        assert_eq!(lines[6], "h:4: h:4: cannot connect: refused");
    }
}

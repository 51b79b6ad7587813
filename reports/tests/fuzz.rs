//! The journal's and the aggregates' readers on hostile bytes: never a
//! panic, and a damaged aggregate never changes a figure. Long runs:
//! `scripts/fuzz.sh`.

#[path = "../../scripts/fuzz_support.rs"]
mod fuzz_support;
use fuzz_support::{config, remember};

use std::path::PathBuf;

use config::{Date, Timestamp};
use proptest::prelude::*;
use reports::fact::{Dim, Dims, Interner};
use reports::query::{run, Query, Sources};
use reports::record::Record;

/// A state directory with one folded day of events, made once.
fn folded() -> &'static (PathBuf, Vec<u8>, Vec<reports::query::Row>) {
    static STATE: std::sync::OnceLock<(PathBuf, Vec<u8>, Vec<reports::query::Row>)> =
        std::sync::OnceLock::new();
    STATE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("reports-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let now = Timestamp::parse_rfc3339("2026-11-24T10:00:00Z").unwrap();
        let log = reports::log::EventLog::open(&dir, now, Default::default()).unwrap();
        for i in 0..20u64 {
            let dims = Dims {
                advertiser: "shop".into(),
                line_item: format!("li-{}", i % 3).into(),
                keyword: if i % 2 == 0 { "broad:tent" } else { "" }.into(),
                ..Dims::default()
            };
            log.track(
                now.as_millis() + i as i64,
                dims,
                i + 1,
                i % 4 == 0,
                u128::from(i),
            );
        }
        log.close();
        let rows = report(&dir).rows;
        let agg = std::fs::read(dir.join("events/2026-11-24.agg")).unwrap();
        (dir, agg, rows)
    })
}

fn report(dir: &std::path::Path) -> reports::Report {
    let day = Date::parse("2026-11-24").unwrap();
    let q = Query {
        from: day,
        to: day,
        by: vec![Dim::LineItem, Dim::Keyword],
    };
    let src = Sources {
        state: dir,
        config: None,
        now: Timestamp::parse_rfc3339("2026-11-25T10:00:00Z").unwrap(),
        progress: false,
    };
    run(&q, &src).unwrap()
}

mod properties {
    use super::*;

    proptest! {
        #![proptest_config(config(128))]

        #[test]
        fn any_line_reads_as_a_record_or_nothing(line in any::<String>()) {
            remember("any_line_reads_as_a_record_or_nothing", &line);
            let _ = Record::parse(&line, &mut Interner::default());
        }

        #[test]
        fn a_damaged_aggregate_changes_no_figure(
            at in any::<prop::sample::Index>(),
            xor in 1u8..=255,
            cut in any::<bool>(),
        ) {
            let (dir, agg, rows) = folded();
            let mut bad = agg.clone();
            let i = at.index(bad.len());
            if cut {
                bad.truncate(i);
            } else {
                bad[i] ^= xor;
            }
            remember("a_damaged_aggregate_changes_no_figure", format!("{i} {xor} {cut}"));
            let path = dir.join("events/2026-11-24.agg");
            std::fs::write(&path, &bad).unwrap();
            let again = report(dir);
            // Put the good one back for the next case.
            std::fs::write(&path, agg).unwrap();
            prop_assert_eq!(&again.rows, rows);
        }
    }
}

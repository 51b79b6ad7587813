use super::*;
use config::ListSource;

/// A request's ids: (source, id) pairs.
struct Ids(Vec<(ListSource, &'static str)>);

impl UserIds for Ids {
    fn any(&self, source: &ListSource, f: &mut dyn FnMut(&str) -> bool) -> bool {
        self.0.iter().any(|(s, id)| s == source && f(id))
    }
}

const HASH: &str = "b4c9a289323b21a01c3e940f150eb9b8c542587f1abfd8f0e1cc1ffc5e475514";

fn all_sources() -> Vec<ListSource> {
    vec![
        ListSource::BuyerUid,
        ListSource::Sha256Email,
        ListSource::Eid("uidapi.com".into()),
    ]
}

#[test]
fn a_member_matches_by_each_source_and_only_by_a_listed_one() {
    let lists = Lists::new(100);
    let batch = format!(
        "{{\"id\":\"u-1\"}}\n{{\"id\":\"{}\"}}\n{{\"id\":\"uid2-token\"}}\n",
        HASH.to_uppercase()
    );
    let a = lists.apply_jsonl("crm", "body", &batch).unwrap();
    assert_eq!((a.added, a.removed, a.members), (3, 0, 3));
    let sources = all_sources();
    for (source, id) in [
        (ListSource::BuyerUid, "u-1"),
        (ListSource::Sha256Email, HASH),
        (ListSource::Eid("uidapi.com".into()), "uid2-token"),
    ] {
        assert!(lists.any_member("crm", &sources, &Ids(vec![(source.clone(), id)])));
        // The same id under a source the list does not name is no match.
        assert!(!lists.any_member(
            "crm",
            &[ListSource::Eid("liveramp.com".into())],
            &Ids(vec![(source, id)])
        ));
    }
    assert!(!lists.any_member("crm", &sources, &Ids(vec![(ListSource::BuyerUid, "u-2")])));
    assert!(!lists.any_member("other", &sources, &Ids(vec![(ListSource::BuyerUid, "u-1")])));
}

#[test]
fn removal_and_the_last_line_of_an_id_wins() {
    let lists = Lists::new(100);
    lists
        .apply_jsonl("l", "b", "{\"id\":\"a\"}\n{\"id\":\"b\"}\n")
        .unwrap();
    let a = lists
        .apply_jsonl(
            "l",
            "b",
            "{\"id\":\"a\",\"remove\":true}\n{\"id\":\"c\"}\n{\"id\":\"c\",\"remove\":true}\n{\"id\":\"zz\",\"remove\":true}\n",
        )
        .unwrap();
    assert_eq!((a.added, a.removed, a.members), (0, 1, 1));
    assert!(!lists.contains("l", "a"));
    assert!(lists.contains("l", "b"));
    assert!(!lists.contains("l", "c"));
}

#[test]
fn a_bad_batch_changes_nothing() {
    let lists = Lists::new(100);
    lists.apply_jsonl("l", "b", "{\"id\":\"a\"}\n").unwrap();
    for (bad, line) in [
        ("{\"id\":\"b\"}\n{\"id\":\"\"}\n", 2),
        ("{\"id\":\"b\"}\nnot json\n", 2),
        ("{\"id\":\"b\"}\n{\"id\":\"c\",\"extra\":1}\n", 2),
        ("{\"id\":\"someone@example.com\"}\n", 1),
        (
            "{\"id\":\"a\",\"remove\":true}\n{\"id\":\"x\\u0000y\"}\n",
            2,
        ),
    ] {
        match lists.apply_jsonl("l", "b", bad) {
            Err(ListError::Data(e)) => assert_eq!(e.line, line, "{bad}: {e}"),
            other => panic!("{bad}: {other:?}"),
        }
        assert!(
            lists.contains("l", "a") && !lists.contains("l", "b"),
            "{bad}"
        );
        assert_eq!(lists.len("l"), 1);
    }
}

#[test]
fn the_limit_refuses_a_batch_that_grows_past_it() {
    let lists = Lists::new(3);
    lists
        .apply_jsonl("l", "b", "{\"id\":\"a\"}\n{\"id\":\"b\"}\n")
        .unwrap();
    assert!(matches!(
        lists.apply_jsonl("m", "b", "{\"id\":\"c\"}\n{\"id\":\"d\"}\n"),
        Err(ListError::Full { would: 4, limit: 3 })
    ));
    assert_eq!(lists.members(), 2);
    // Shrinking is always allowed.
    lists
        .apply_jsonl("l", "b", "{\"id\":\"a\",\"remove\":true}\n")
        .unwrap();
    lists.apply_jsonl("m", "b", "{\"id\":\"c\"}\n").unwrap();
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "lists-{name}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn batches_survive_a_restart_and_a_torn_tail_is_dropped() {
    let state = temp_dir("restart");
    {
        let lists = Lists::new(100);
        lists.open(None, Some(&state), &|_| true).unwrap();
        lists
            .apply_jsonl("crm/eu", "b", "{\"id\":\"a\"}\n{\"id\":\"b\"}\n")
            .unwrap();
        lists
            .apply_jsonl("crm/eu", "b", "{\"id\":\"a\",\"remove\":true}\n")
            .unwrap();
    }
    let log = state.join("lists").join(file_name("crm/eu"));
    assert!(log.exists(), "{}", log.display());
    // A crash mid-batch: lines without their commit.
    let mut f = OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(b"+c\n+d\n.2 00").unwrap();
    drop(f);
    let lists = Lists::new(100);
    lists.open(None, Some(&state), &|_| true).unwrap();
    assert!(!lists.contains("crm/eu", "a"));
    assert!(lists.contains("crm/eu", "b"));
    assert!(!lists.contains("crm/eu", "c"));
    // Appends after the cut read back whole.
    lists
        .apply_jsonl("crm/eu", "b", "{\"id\":\"e\"}\n")
        .unwrap();
    let again = Lists::new(100);
    again.open(None, Some(&state), &|_| true).unwrap();
    assert!(again.contains("crm/eu", "b") && again.contains("crm/eu", "e"));
    assert_eq!(again.len("crm/eu"), 2);
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn a_garbled_batch_ends_the_log_there() {
    let state = temp_dir("garbled");
    {
        let lists = Lists::new(100);
        lists.open(None, Some(&state), &|_| true).unwrap();
        lists.apply_jsonl("l", "b", "{\"id\":\"a\"}\n").unwrap();
        lists.apply_jsonl("l", "b", "{\"id\":\"b\"}\n").unwrap();
    }
    let log = state.join("lists").join("l.log");
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(&log, text.replace("+b", "+x")).unwrap();
    let lists = Lists::new(100);
    lists.open(None, Some(&state), &|_| true).unwrap();
    assert!(lists.contains("l", "a"));
    assert!(!lists.contains("l", "b") && !lists.contains("l", "x"));
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn member_files_under_data_load_and_name_their_list() {
    let data = temp_dir("data");
    std::fs::create_dir_all(data.join("crm")).unwrap();
    std::fs::write(data.join("crm/loyal.members"), "{\"id\":\"a\"}\n").unwrap();
    let lists = Lists::new(100);
    lists.open(Some(&data), None, &|id| id == "loyal").unwrap();
    assert!(lists.contains("loyal", "a"));
    std::fs::write(data.join("crm/typo.members"), "{\"id\":\"a\"}\n").unwrap();
    let err = Lists::new(100)
        .open(Some(&data), None, &|id| id == "loyal")
        .unwrap_err();
    assert!(err.to_string().contains("\"typo\""), "{err}");
    std::fs::remove_file(data.join("crm/typo.members")).unwrap();
    std::fs::write(
        data.join("crm/loyal.members"),
        "{\"id\":\"a\"}\n{\"id\":7}\n",
    )
    .unwrap();
    let err = Lists::new(100)
        .open(Some(&data), None, &|id| id == "loyal")
        .unwrap_err();
    assert!(err.to_string().contains("loyal.members:2:"), "{err}");
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn churn_is_compacted_and_reads_the_same() {
    let state = temp_dir("churn");
    let lists = Lists::new(1_000_000);
    lists.open(None, Some(&state), &|_| true).unwrap();
    lists.apply_jsonl("l", "b", "{\"id\":\"keep\"}\n").unwrap();
    let add: String = (0..60_000)
        .map(|i| format!("{{\"id\":\"t{i}\"}}\n"))
        .collect();
    let remove: String = (0..60_000)
        .map(|i| format!("{{\"id\":\"t{i}\",\"remove\":true}}\n"))
        .collect();
    lists.apply_jsonl("l", "b", &add).unwrap();
    lists.apply_jsonl("l", "b", &remove).unwrap();
    let log = state.join("lists").join("l.log");
    let lines = std::fs::read_to_string(&log).unwrap().lines().count();
    assert!(lines < 10, "{lines} lines after compaction");
    let again = Lists::new(100);
    again.open(None, Some(&state), &|_| true).unwrap();
    assert_eq!(again.len("l"), 1);
    assert!(again.contains("l", "keep"));
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn log_names_round_trip() {
    for id in ["crm", "crm/eu", ".hidden", "a b", "é"] {
        let name = file_name(id);
        assert!(!name.contains('/') && !name.starts_with('.'), "{name}");
        assert_eq!(id_of_file(&name).as_deref(), Some(id));
    }
}

#[test]
fn the_prefix_index_finds_exactly_the_members() {
    let keys = RandomState::new();
    for n in [0usize, 1, 15, 16, 17, 1000, 40_000] {
        let mut members: Vec<u64> = (0..n as u64).map(|i| keys.hash_one(i)).collect();
        members.sort_unstable();
        members.dedup();
        let m = Members::new(members.clone());
        for &k in &members {
            assert!(m.contains(k), "{n}: {k}");
        }
        for i in n as u64..n as u64 + 1000 {
            let k = keys.hash_one(i);
            assert_eq!(m.contains(k), members.binary_search(&k).is_ok(), "{n}");
        }
        // The ends of the key space.
        for k in [0, 1, u64::MAX - 1, u64::MAX] {
            assert_eq!(m.contains(k), members.binary_search(&k).is_ok());
        }
    }
    let edges = Members::new(vec![0, 5, u64::MAX]);
    assert!(edges.contains(0) && edges.contains(u64::MAX) && !edges.contains(6));
}

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
const ADV: &str = "shop";

fn all_sources() -> Vec<ListSource> {
    vec![
        ListSource::BuyerUid,
        ListSource::Sha256Email,
        ListSource::Eid("uidapi.com".into()),
    ]
}

fn apply(lists: &Lists, list: &str, text: &str) -> Result<Applied, ListError> {
    lists.apply_jsonl(ADV, list, "body", text)
}

fn has(lists: &Lists, list: &str, id: &str) -> bool {
    lists.contains(ADV, list, id)
}

fn owner_any(_: &str) -> Option<String> {
    Some(ADV.to_owned())
}

#[test]
fn a_member_matches_by_each_source_and_only_by_a_listed_one() {
    let lists = Lists::new(100);
    let batch = format!(
        "{{\"id\":\"u-1\"}}\n{{\"id\":\"{}\"}}\n{{\"id\":\"uid2-token\"}}\n",
        HASH.to_uppercase()
    );
    let a = apply(&lists, "crm", &batch).unwrap();
    assert_eq!((a.added, a.removed, a.members), (3, 0, 3));
    let sources = all_sources();
    for (source, id) in [
        (ListSource::BuyerUid, "u-1"),
        (ListSource::Sha256Email, HASH),
        (
            ListSource::Sha256Email,
            "B4C9A289323B21A01C3E940F150EB9B8C542587F1ABFD8F0E1CC1FFC5E475514",
        ),
        (ListSource::Eid("uidapi.com".into()), "uid2-token"),
    ] {
        assert!(lists.any_member(ADV, "crm", &sources, &Ids(vec![(source.clone(), id)])));
        // The same id under a source the list does not name is no match.
        assert!(!lists.any_member(
            ADV,
            "crm",
            &[ListSource::Eid("liveramp.com".into())],
            &Ids(vec![(source, id)])
        ));
    }
    let buyer = |id| Ids(vec![(ListSource::BuyerUid, id)]);
    assert!(!lists.any_member(ADV, "crm", &sources, &buyer("u-2")));
    assert!(!lists.any_member(ADV, "other", &sources, &buyer("u-1")));
    // Another advertiser's list of the same id is another list.
    assert!(!lists.any_member("rival", "crm", &sources, &buyer("u-1")));
}

#[test]
fn long_mixed_case_ids_that_are_not_digests_match_as_they_are() {
    let lists = Lists::new(100);
    let id = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGhIjKlMnOpQrStUvWxYz01";
    assert_eq!(id.len(), 64);
    apply(&lists, "l", &format!("{{\"id\":\"{id}\"}}\n")).unwrap();
    let ids = Ids(vec![(ListSource::BuyerUid, id)]);
    assert!(lists.any_member(ADV, "l", &[ListSource::BuyerUid], &ids));
    let lower = Ids(vec![(
        ListSource::BuyerUid,
        "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz01",
    )]);
    assert!(!lists.any_member(ADV, "l", &[ListSource::BuyerUid], &lower));
}

#[test]
fn removal_and_the_last_line_of_an_id_wins() {
    let lists = Lists::new(100);
    apply(&lists, "l", "{\"id\":\"a\"}\n{\"id\":\"b\"}\n").unwrap();
    let a = apply(
        &lists,
        "l",
        "{\"id\":\"a\",\"remove\":true}\n{\"id\":\"c\"}\n{\"id\":\"c\",\"remove\":true}\n{\"id\":\"zz\",\"remove\":true}\n",
    )
    .unwrap();
    assert_eq!((a.added, a.removed, a.members), (0, 1, 1));
    assert!(!has(&lists, "l", "a"));
    assert!(has(&lists, "l", "b"));
    assert!(!has(&lists, "l", "c"));
}

#[test]
fn a_bad_batch_changes_nothing() {
    let lists = Lists::new(100);
    apply(&lists, "l", "{\"id\":\"a\"}\n").unwrap();
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
        match apply(&lists, "l", bad) {
            Err(ListError::Data(e)) => assert_eq!(e.line, line, "{bad}: {e}"),
            other => panic!("{bad}: {other:?}"),
        }
        assert!(has(&lists, "l", "a") && !has(&lists, "l", "b"), "{bad}");
        assert_eq!(lists.len(ADV, "l"), 1);
    }
}

#[test]
fn the_limit_refuses_a_batch_that_grows_past_it() {
    let lists = Lists::new(3);
    apply(&lists, "l", "{\"id\":\"a\"}\n{\"id\":\"b\"}\n").unwrap();
    assert!(matches!(
        apply(&lists, "m", "{\"id\":\"c\"}\n{\"id\":\"d\"}\n"),
        Err(ListError::Full { would: 4, limit: 3 })
    ));
    assert_eq!(lists.members(), 2);
    // Shrinking is always allowed.
    apply(&lists, "l", "{\"id\":\"a\",\"remove\":true}\n").unwrap();
    apply(&lists, "m", "{\"id\":\"c\"}\n").unwrap();
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

fn log_path(state: &Path, list: &str) -> PathBuf {
    state.join("lists").join(file_name(&list_key(ADV, list)))
}

#[test]
fn batches_survive_a_restart_and_a_torn_tail_is_dropped() {
    let state = temp_dir("restart");
    {
        let lists = Lists::new(100);
        lists.open(None, Some(&state), &owner_any).unwrap();
        apply(&lists, "crm/eu", "{\"id\":\"a\"}\n{\"id\":\"b\"}\n").unwrap();
        apply(&lists, "crm/eu", "{\"id\":\"a\",\"remove\":true}\n").unwrap();
    }
    let log = log_path(&state, "crm/eu");
    assert!(log.exists(), "{}", log.display());
    // Customer ids in clear: the owner's alone.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&log), 0o600);
        // One made readable by all before is made private when opened.
        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o644)).unwrap();
        Lists::new(100)
            .open(None, Some(&state), &owner_any)
            .unwrap();
        assert_eq!(mode(&log), 0o600);
    }
    // A crash mid-batch: lines without their commit.
    let mut f = OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(b"+c\n+d\n.2 00").unwrap();
    drop(f);
    let lists = Lists::new(100);
    lists.open(None, Some(&state), &owner_any).unwrap();
    assert!(!has(&lists, "crm/eu", "a"));
    assert!(has(&lists, "crm/eu", "b"));
    assert!(!has(&lists, "crm/eu", "c"));
    // Appends after the cut read back whole.
    apply(&lists, "crm/eu", "{\"id\":\"e\"}\n").unwrap();
    let again = Lists::new(100);
    again.open(None, Some(&state), &owner_any).unwrap();
    assert!(has(&again, "crm/eu", "b") && has(&again, "crm/eu", "e"));
    assert_eq!(again.len(ADV, "crm/eu"), 2);
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn damage_before_the_end_keeps_what_was_whole_and_sets_the_log_aside() {
    let state = temp_dir("garbled");
    {
        let lists = Lists::new(100);
        lists.open(None, Some(&state), &owner_any).unwrap();
        apply(&lists, "l", "{\"id\":\"a\"}\n").unwrap();
        apply(&lists, "l", "{\"id\":\"b\"}\n").unwrap();
        apply(&lists, "l", "{\"id\":\"c\"}\n").unwrap();
    }
    let log = log_path(&state, "l");
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(&log, text.replace("+b", "+x")).unwrap();
    let lists = Lists::new(100);
    lists.open(None, Some(&state), &owner_any).unwrap();
    assert!(has(&lists, "l", "a"));
    assert!(!has(&lists, "l", "b") && !has(&lists, "l", "x"));
    assert!(log.with_extension("log.damaged").exists());
    // The log goes on from what was whole.
    apply(&lists, "l", "{\"id\":\"d\"}\n").unwrap();
    let again = Lists::new(100);
    again.open(None, Some(&state), &owner_any).unwrap();
    assert!(has(&again, "l", "a") && has(&again, "l", "d"));
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn a_failed_write_is_cut_back_before_the_next_batch() {
    let state = temp_dir("torn-then-more");
    let lists = Lists::new(100);
    lists.open(None, Some(&state), &owner_any).unwrap();
    apply(&lists, "l", "{\"id\":\"a\"}\n").unwrap();
    // Torn bytes of a write that failed half way, still in the file.
    let log = log_path(&state, "l");
    let mut f = OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(b"+tor").unwrap();
    drop(f);
    apply(&lists, "l", "{\"id\":\"b\"}\n").unwrap();
    drop(lists);
    let again = Lists::new(100);
    again.open(None, Some(&state), &owner_any).unwrap();
    assert!(has(&again, "l", "a") && has(&again, "l", "b"));
    assert!(!has(&again, "l", "tor"));
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn member_files_under_data_load_and_name_their_list() {
    let data = temp_dir("data");
    std::fs::create_dir_all(data.join("crm")).unwrap();
    std::fs::write(data.join("crm/loyal.members"), "{\"id\":\"a\"}\n").unwrap();
    let owner = |id: &str| (id == "loyal").then(|| ADV.to_owned());
    let lists = Lists::new(100);
    lists.open(Some(&data), None, &owner).unwrap();
    assert!(has(&lists, "loyal", "a"));
    std::fs::write(data.join("crm/typo.members"), "{\"id\":\"a\"}\n").unwrap();
    let err = Lists::new(100).open(Some(&data), None, &owner).unwrap_err();
    assert!(err.to_string().contains("\"typo\""), "{err}");
    std::fs::remove_file(data.join("crm/typo.members")).unwrap();
    std::fs::write(
        data.join("crm/loyal.members"),
        "{\"id\":\"a\"}\n\n{\"id\":7}\n",
    )
    .unwrap();
    let err = Lists::new(100).open(Some(&data), None, &owner).unwrap_err();
    assert!(err.to_string().contains("loyal.members:3:"), "{err}");
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn a_list_moved_to_another_advertiser_starts_empty() {
    let state = temp_dir("moved");
    {
        let lists = Lists::new(100);
        lists.open(None, Some(&state), &owner_any).unwrap();
        apply(&lists, "crm", "{\"id\":\"customer\"}\n").unwrap();
    }
    let lists = Lists::new(100);
    lists
        .open(None, Some(&state), &|_| Some("rival".to_owned()))
        .unwrap();
    assert!(!lists.contains("rival", "crm", "customer"));
    assert!(lists.contains(ADV, "crm", "customer"), "kept for its owner");
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn churn_is_compacted_and_removals_stand_against_member_files() {
    let data = temp_dir("churn-data");
    let state = temp_dir("churn");
    std::fs::write(
        data.join("l.members"),
        "{\"id\":\"optout\"}\n{\"id\":\"keep\"}\n",
    )
    .unwrap();
    {
        let lists = Lists::new(1_000_000);
        lists.open(Some(&data), Some(&state), &owner_any).unwrap();
        apply(&lists, "l", "{\"id\":\"optout\",\"remove\":true}\n").unwrap();
        // An id the file also lists, uploaded: it must outlive the file.
        apply(&lists, "l", "{\"id\":\"keep\"}\n").unwrap();
        let add: String = (0..60_000)
            .map(|i| format!("{{\"id\":\"t{i}\"}}\n"))
            .collect();
        let remove: String = (0..60_000)
            .map(|i| format!("{{\"id\":\"t{i}\",\"remove\":true}}\n"))
            .collect();
        apply(&lists, "l", &add).unwrap();
        apply(&lists, "l", &remove).unwrap();
        assert!(!has(&lists, "l", "optout"));
    }
    let log = log_path(&state, "l");
    let lines = std::fs::read_to_string(&log).unwrap().lines().count();
    assert!(lines < 60_010, "{lines} lines after compaction");
    std::fs::write(data.join("l.members"), "{\"id\":\"optout\"}\n").unwrap();
    let again = Lists::new(1_000_000);
    again.open(Some(&data), Some(&state), &owner_any).unwrap();
    assert!(
        !has(&again, "l", "optout"),
        "a removal stands after compaction"
    );
    assert!(has(&again, "l", "keep"), "an upload outlives the file");
    assert_eq!(again.len(ADV, "l"), 1);
    let _ = std::fs::remove_dir_all(&state);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn log_names_are_unique_and_short() {
    let mut seen = std::collections::HashSet::new();
    for (adv, id) in [
        ("a", "b.c"),
        ("a.b", "c"),
        ("crm", "eu/x"),
        ("é", ".hidden"),
    ] {
        let name = file_name(&list_key(adv, id));
        assert!(!name.contains('/') && !name.starts_with('.'), "{name}");
        assert!(seen.insert(name));
    }
    let long = "x".repeat(300);
    assert!(file_name(&list_key("a", &long)).len() < 40);
}

#[test]
fn the_prefix_index_finds_exactly_the_members() {
    let keys = std::hash::RandomState::new();
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
        for k in [0, 1, u64::MAX - 1, u64::MAX] {
            assert_eq!(m.contains(k), members.binary_search(&k).is_ok());
        }
    }
    let edges = Members::new(vec![0, 5, u64::MAX]);
    assert!(edges.contains(0) && edges.contains(u64::MAX) && !edges.contains(6));
}

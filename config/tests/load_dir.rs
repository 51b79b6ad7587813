//! Loading from a real directory tree.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{edit, BASE, OTHER};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path =
            std::env::temp_dir().join(format!("config-load-dir-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create parent");
        }
        fs::write(&path, contents).expect("write file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn loads_yaml_and_yml_recursively_in_path_order() {
    let dir = TempDir::new("recursive");
    dir.write("z-last.yml", BASE);
    dir.write("nested/deeper/a-first.yaml", OTHER);
    dir.write("README.md", "not config");
    dir.write("notes.yaml.bak", "not: [config");
    let config = config::load_dir(&dir.0).expect("valid tree");
    let files: Vec<&Path> = config
        .advertisers
        .iter()
        .map(|a| a.file.as_path())
        .collect();
    assert_eq!(
        files,
        [
            dir.0.join("nested/deeper/a-first.yaml"),
            dir.0.join("z-last.yml")
        ]
    );
    assert_eq!(config.advertisers[0].id, "northwind");
}

#[test]
fn hidden_entries_are_skipped() {
    // The layout of a Kubernetes ConfigMap volume: the real files live in
    // dot-directories and would otherwise be loaded twice.
    let dir = TempDir::new("hidden");
    dir.write("..2026_11_01_00_00_00.123/acme.yaml", BASE);
    dir.write(".git/acme.yaml", BASE);
    dir.write(".acme.yaml", BASE);
    dir.write("acme.yaml", BASE);
    let config = config::load_dir(&dir.0).expect("each file once");
    assert_eq!(config.advertisers.len(), 1);
}

#[test]
fn problems_carry_the_path_under_the_given_directory() {
    let dir = TempDir::new("paths");
    dir.write("sub/acme.yaml", edit(BASE, "cpm: 6.00", "cpm: 0"));
    let problems = config::load_dir(&dir.0).expect_err("a problem");
    assert_eq!(problems.len(), 1);
    assert_eq!(problems.0[0].file, dir.0.join("sub/acme.yaml"));
    assert!(problems
        .to_string()
        .starts_with(&format!("{}:", dir.0.join("sub/acme.yaml").display())));
}

#[test]
fn a_directory_without_yaml_is_a_problem() {
    let dir = TempDir::new("empty");
    dir.write("README.md", "nothing here");
    let problems = config::load_dir(&dir.0).expect_err("no yaml");
    assert_eq!(problems.len(), 1);
    let p = &problems.0[0];
    assert_eq!(
        (p.file.as_path(), p.line, p.column),
        (dir.0.as_path(), 0, 0)
    );
    assert_eq!(
        p.message,
        "no *.yaml or *.yml files found in this directory"
    );
    assert_eq!(
        p.to_string(),
        format!(
            "{}: no *.yaml or *.yml files found in this directory",
            dir.0.display()
        )
    );
}

#[test]
fn a_missing_directory_is_a_problem() {
    let missing = std::env::temp_dir().join(format!("config-missing-{}", std::process::id()));
    let problems = config::load_dir(&missing).expect_err("missing dir");
    assert_eq!(problems.len(), 1);
    assert_eq!(problems.0[0].file, missing);
    assert_eq!(problems.0[0].line, 0);
    assert!(
        problems.0[0]
            .message
            .starts_with("the config directory cannot be read: "),
        "{}",
        problems.0[0].message
    );
}

#[test]
fn a_file_that_is_not_utf8_is_a_problem_and_others_still_load() {
    let dir = TempDir::new("utf8");
    dir.write("a.yaml", [0xff, 0xfe, b'a']);
    dir.write("b.yaml", edit(OTHER, "cpm: 1.80", "cpm: 0"));
    let problems = config::load_dir(&dir.0).expect_err("problems");
    let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "the file is not UTF-8 text (byte 0xff here); save it as UTF-8",
            "line item \"nw-line\": cpm must be more than 0 (it is 0.00)"
        ]
    );
    assert_eq!((problems.0[0].line, problems.0[0].column), (1, 1));
    // Saved as Latin-1: the accented letter's place, counted in
    // characters like every other column.
    dir.write("a.yaml", b"# \xc3\xa9t\xc3\xa9\nname: Caf\xe9 Books\n");
    let problems = config::load_dir(&dir.0).expect_err("problems");
    let p = &problems.0[0];
    assert_eq!(
        p.message,
        "the file is not UTF-8 text (byte 0xe9 here); save it as UTF-8"
    );
    assert_eq!((p.line, p.column), (2, 10));
}

/// A comment line of YAML, `n` bytes in all with its newline.
fn comments(n: u64) -> Vec<u8> {
    let mut text = vec![b'#'; n as usize];
    for line_end in (79..text.len()).step_by(80) {
        text[line_end] = b'\n';
    }
    text
}

#[test]
fn files_too_large_are_problems_not_read() {
    let dir = TempDir::new("large");
    dir.write("a.yaml", BASE);
    dir.write("b.yaml", comments(config::MAX_FILE_BYTES + 1));
    let problems = config::load_dir(&dir.0).expect_err("too large");
    assert_eq!(problems.0.len(), 1, "{problems}");
    assert_eq!(
        problems.0[0].message,
        "the file holds more than the 32 MiB a config file may"
    );
    assert!(problems.0[0].file.ends_with("b.yaml"));
    // Placed at the file's start, as editors and CI read problems.
    assert!(
        problems.0[0]
            .to_string()
            .ends_with("b.yaml:1:1: the file holds more than the 32 MiB a config file may"),
        "{problems}"
    );
    // The most a file may hold loads: an advertiser and its comments.
    let mut most = OTHER.as_bytes().to_vec();
    most.push(b'\n');
    most.extend(comments(config::MAX_FILE_BYTES - most.len() as u64));
    assert_eq!(most.len() as u64, config::MAX_FILE_BYTES);
    dir.write("b.yaml", &most);
    config::load_dir(&dir.0).expect("32 MiB with its comments, and the base");

    // Past the total, later files are not read at all. (Sparse files of
    // NULs: nothing written to the disk; they are problems of their own
    // once read.)
    for name in ["c", "d", "e", "f"] {
        let f = fs::File::create(dir.0.join(format!("{name}.yaml"))).unwrap();
        f.set_len(config::MAX_FILE_BYTES).unwrap();
    }
    // One over its own bound past the total is named for its own.
    let f = fs::File::create(dir.0.join("g.yaml")).unwrap();
    f.set_len(config::MAX_FILE_BYTES + 1).unwrap();
    let problems = config::load_dir(&dir.0).expect_err("too much in all");
    let of = |name: &str| -> Vec<&str> {
        problems
            .iter()
            .filter(|p| p.file.ends_with(name))
            .map(|p| p.message.as_str())
            .collect()
    };
    assert_eq!(
        of("f.yaml"),
        ["with the files before it, the config holds more than the 128 MiB it may in all"],
        "{problems}"
    );
    assert_eq!(
        of("g.yaml"),
        ["the file holds more than the 32 MiB a config file may"],
        "{problems}"
    );
}

#[cfg(unix)]
#[test]
fn symlinks_are_followed_and_loops_end() {
    let dir = TempDir::new("symlinks");
    let real = dir.write("data/acme.yaml", BASE);
    std::os::unix::fs::symlink(&real, dir.0.join("linked.yaml")).expect("file symlink");
    std::os::unix::fs::symlink(&dir.0, dir.0.join("data/loop")).expect("dir symlink");
    let problems = config::load_dir(&dir.0).expect_err("acme twice");
    // The file is reached twice (directly and through its link), never more:
    // every id of the linked copy is a duplicate, each exactly once.
    assert!(problems.iter().all(|p| p.file == dir.0.join("linked.yaml")));
    assert!(problems.iter().all(|p| p.message.starts_with("duplicate ")));
    let advertiser_dups = problems
        .iter()
        .filter(|p| p.message.starts_with("duplicate advertiser id \"acme\""))
        .count();
    assert_eq!(advertiser_dups, 1, "{problems}");
}

/// A file that cannot be read is a problem at its start, `file:1:1`,
/// whether its metadata or its bytes fail (a ConfigMap's dangling link).
#[test]
fn a_dangling_link_is_a_problem_at_its_start() {
    let dir = TempDir::new("dangling");
    dir.write("acme.yaml", BASE);
    std::os::unix::fs::symlink(dir.0.join("gone.yaml"), dir.0.join("shop.yaml")).unwrap();
    let problems = config::load_dir(&dir.0).expect_err("a dangling link");
    assert_eq!(problems.len(), 1, "{problems}");
    let p = &problems.0[0];
    assert_eq!((p.line, p.column), (1, 1), "{problems}");
    assert!(
        p.to_string()
            .contains("shop.yaml:1:1: the file cannot be read: "),
        "{problems}"
    );
}

#[test]
fn the_fingerprint_changes_when_a_file_or_the_configmap_swap_changes() {
    use std::os::unix::fs::symlink;
    let dir = TempDir::new("fingerprint");
    // A ConfigMap volume: files are symlinks into `..data`, itself a
    // symlink to a timestamped directory that an update replaces.
    let v1 = dir.0.join("..2026_11_30_v1");
    fs::create_dir_all(&v1).unwrap();
    fs::write(v1.join("acme.yaml"), BASE).unwrap();
    symlink("..2026_11_30_v1", dir.0.join("..data")).unwrap();
    symlink("..data/acme.yaml", dir.0.join("acme.yaml")).unwrap();
    let first = config::fingerprint(&dir.0);
    assert_eq!(config::fingerprint(&dir.0), first, "nothing changed");

    // The same bytes in a new directory, `..data` swapped atomically.
    let v2 = dir.0.join("..2026_11_30_v2");
    fs::create_dir_all(&v2).unwrap();
    fs::write(v2.join("acme.yaml"), BASE).unwrap();
    symlink("..2026_11_30_v2", dir.0.join("..data_tmp")).unwrap();
    fs::rename(dir.0.join("..data_tmp"), dir.0.join("..data")).unwrap();
    let swapped = config::fingerprint(&dir.0);
    assert_ne!(swapped, first, "a swap is a change");

    // A new file; an edit that changes the size.
    fs::write(dir.0.join("other.yaml"), OTHER).unwrap();
    let added = config::fingerprint(&dir.0);
    assert_ne!(added, swapped);
    fs::write(
        dir.0.join("other.yaml"),
        edit(OTHER, "Northwind", "Northwind Books"),
    )
    .unwrap();
    assert_ne!(config::fingerprint(&dir.0), added);
}

/// An alias bomb is refused in words an account manager
/// reads, at its place: the parser's own were its limit's debug text
/// (`limits breached: ScalarBytes { total_scalar_bytes: … }`).
#[test]
fn an_alias_bomb_is_refused_in_plain_words() {
    // One long name, repeated by alias where a list of names goes.
    let refs = vec!["*n"; 20_000].join(", ");
    let text = format!(
        "advertiser:\n  id: a\n  name: &n {}\n  domains: [a.example]\naudiences:\n  - {{id: x, kind: interests, interests: [{refs}]}}\n",
        "x".repeat(100_000)
    );
    let files = [(std::path::PathBuf::from("bomb.yaml"), text)];
    let problems = config::load_files(&files).expect_err("refused");
    let p = &problems.0[0];
    assert!(
        p.message
            .starts_with("the YAML cannot be read as a config: "),
        "{}",
        p.message
    );
    assert!(!p.message.contains('{'), "{}", p.message);
    assert!(p.line >= 1 && p.column >= 1);
}

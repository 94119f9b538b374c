//! `kill -9` of the real `kappalog migrate` process at random points, then a re-run: the result is
//! always complete and every record reads back equal to the format-2 original.

mod common;
mod migrate_common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use migrate_common::{assert_store_equals, write_old_store};

fn migrate(dir: &std::path::Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_kappalog"))
        .arg("migrate")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn migrate_killed_at_random_points_then_run_again_is_complete_and_equal() {
    let seed = common::seed();
    let mut rng = common::Rng::new(seed);
    let pristine = tempfile::tempdir().unwrap();
    let expected = write_old_store(pristine.path(), &mut rng, 4, 4);

    // How long a whole run takes here, so that kills spread over it.
    let probe = tempfile::tempdir().unwrap();
    common::copy_dir(pristine.path(), probe.path());
    let started = Instant::now();
    assert!(migrate(probe.path()).wait().unwrap().success());
    let whole = started.elapsed();
    assert_store_equals(probe.path(), &expected);
    println!("a whole run: {whole:?}");

    let mut interrupted = 0;
    let mut mid_work = 0;
    for round in 0..16 {
        let dir = tempfile::tempdir().unwrap();
        common::copy_dir(pristine.path(), dir.path());
        // One to three kills before the run that is left to finish.
        for _ in 0..1 + rng.below(3) {
            let mut child = migrate(dir.path());
            let delay = Duration::from_micros(rng.below(whole.as_micros() as u64 + 1));
            std::thread::sleep(delay);
            child.kill().unwrap(); // SIGKILL
            let status = child.wait().unwrap();
            let meta = std::fs::read_to_string(dir.path().join("kappalog.json")).unwrap();
            if !status.success() && meta.contains("\"format_version\": 2") {
                interrupted += 1;
                mid_work += dir.path().join("migrate.tmp").exists() as u32;
            }
            println!("round {round}: killed after {delay:?}");
        }
        let out = Command::new(env!("CARGO_BIN_EXE_kappalog")).arg("migrate").arg(dir.path()).output().unwrap();
        assert!(out.status.success(), "round {round}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(!dir.path().join("migrate.tmp").exists());
        assert_store_equals(dir.path(), &expected);
    }
    println!("{interrupted} kills interrupted a migration, {mid_work} of them with partitions under way");
    assert!(interrupted > 0, "no kill landed before the end of a run");
}

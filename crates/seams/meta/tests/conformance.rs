//! The `MetaStore` conformance suite: what every implementation must do, written once and
//! run per implementation (`conformance_tests!(module, factory)`). A factory makes a fresh,
//! empty database and returns a `Backing` that opens store instances on it: each `open()`
//! is another handle (for SQLite another connection, as a second process would have).

use opentrail_meta::{
    AccessKeyRecord, AccountOrigin, AccountRecord, MetaError, MetaStore, SqliteMetaStore,
    Transactions,
};
use std::sync::{Arc, Barrier};

/// A fresh database, and a way to open instances on it.
pub struct Backing {
    open: Box<dyn Fn() -> Arc<dyn MetaStore> + Send + Sync>,
}

impl Backing {
    pub fn new(open: impl Fn() -> Arc<dyn MetaStore> + Send + Sync + 'static) -> Self {
        Self {
            open: Box::new(open),
        }
    }

    pub fn open(&self) -> Arc<dyn MetaStore> {
        (self.open)()
    }
}

/// Trails as the trail service writes them, reduced to what the race rules need:
/// key `<region>/<name>`, value `<region>`.
const TRAILS: &str = "trails";
const PER_REGION: usize = 5;

#[derive(Debug, PartialEq)]
enum CreateError {
    NameTaken,
    RegionFull,
    Meta(String),
}

impl From<MetaError> for CreateError {
    fn from(e: MetaError) -> Self {
        CreateError::Meta(e.to_string())
    }
}

/// Creates a trail if its name is free in the region and the region has room: the checks
/// the trail service makes, inside one transaction.
fn create_trail(store: &dyn MetaStore, region: &str, name: &str) -> Result<(), CreateError> {
    store.transaction(|tx| {
        let key = format!("{region}/{name}");
        if tx.get_document(TRAILS, &key)?.is_some() {
            return Err(CreateError::NameTaken);
        }
        let in_region = tx
            .list_documents(TRAILS)?
            .iter()
            .filter(|(_, r)| r == region)
            .count();
        if in_region >= PER_REGION {
            return Err(CreateError::RegionFull);
        }
        tx.put_document(TRAILS, &key, region)?;
        Ok(())
    })
}

/// Runs `writers` closures at once (released together by a barrier), half of them on a
/// second store instance; returns each one's result.
fn race<T: Send>(
    backing: &Backing,
    writers: usize,
    write: impl Fn(&dyn MetaStore, usize) -> T + Sync,
) -> Vec<T> {
    let stores = [backing.open(), backing.open()];
    let barrier = Barrier::new(writers);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..writers)
            .map(|i| {
                let (store, barrier, write) = (&stores[i % 2], &barrier, &write);
                scope.spawn(move || {
                    barrier.wait();
                    write(store.as_ref(), i)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

pub fn documents_crud(backing: &Backing) {
    let store = backing.open();
    assert_eq!(store.get_document("c", "a").unwrap(), None);
    store.put_document("c", "b", "2").unwrap();
    store.put_document("c", "a", "1").unwrap();
    store.put_document("other", "a", "x").unwrap();
    store.put_document("c", "a", "one").unwrap();
    assert_eq!(
        store.get_document("c", "a").unwrap().as_deref(),
        Some("one")
    );
    assert_eq!(
        store.list_documents("c").unwrap(),
        vec![("a".into(), "one".into()), ("b".into(), "2".into())]
    );
    assert!(store.delete_document("c", "a").unwrap());
    assert!(!store.delete_document("c", "a").unwrap());
    assert_eq!(store.list_documents("c").unwrap().len(), 1);
    assert_eq!(store.list_documents("other").unwrap().len(), 1);
    assert!(store.list_documents("none").unwrap().is_empty());
}

pub fn settings_keys_and_accounts(backing: &Backing) {
    let store = backing.open();
    assert_eq!(store.get_setting("s").unwrap(), None);
    assert_eq!(store.init_setting("s", "1").unwrap(), "1");
    assert_eq!(store.init_setting("s", "2").unwrap(), "1");
    let key = AccessKeyRecord {
        access_key_id: "AKIA1".into(),
        secret_access_key: "secret".into(),
        user_name: "alice".into(),
        account_id: "111122223333".into(),
        is_root: false,
        ingest_any_account: true,
        forward_audit: false,
        created_at: "2026-01-01T00:00:00Z".into(),
    };
    store.put_access_key(&key).unwrap();
    assert_eq!(store.get_access_key("AKIA1").unwrap(), Some(key.clone()));
    assert_eq!(store.list_access_keys().unwrap(), vec![key]);
    assert!(store.delete_access_key("AKIA1").unwrap());
    assert!(!store.delete_access_key("AKIA1").unwrap());
    let account = AccountRecord {
        account_id: "111122223333".into(),
        origin: AccountOrigin::Cli,
        created_at: "2026-01-01T00:00:00Z".into(),
    };
    assert!(store.register_account(&account).unwrap());
    assert!(!store.register_account(&account).unwrap());
    assert_eq!(store.list_accounts().unwrap(), vec![account]);
}

pub fn transaction_commits_every_write(backing: &Backing) {
    let store = backing.open();
    store.put_document("c", "gone", "x").unwrap();
    let answer: Result<u32, MetaError> = store.transaction(|tx| {
        tx.put_document("c", "a", "1")?;
        tx.put_document("d", "b", "2")?;
        assert!(tx.delete_document("c", "gone")?);
        // A transaction reads its own writes.
        assert_eq!(tx.get_document("c", "a")?.as_deref(), Some("1"));
        assert_eq!(tx.list_documents("c")?, vec![("a".into(), "1".into())]);
        Ok(42)
    });
    assert_eq!(answer.unwrap(), 42);
    let other = backing.open();
    assert_eq!(other.get_document("c", "a").unwrap().as_deref(), Some("1"));
    assert_eq!(other.get_document("d", "b").unwrap().as_deref(), Some("2"));
    assert_eq!(other.get_document("c", "gone").unwrap(), None);
}

pub fn transaction_rolls_back_on_error(backing: &Backing) {
    let store = backing.open();
    store.put_document("c", "kept", "old").unwrap();
    let failed: Result<(), CreateError> = store.transaction(|tx| {
        tx.put_document("c", "new", "1")?;
        tx.put_document("c", "kept", "new")?;
        tx.delete_document("c", "kept")?;
        Err(CreateError::NameTaken)
    });
    // The body's own error comes back unchanged.
    assert_eq!(failed, Err(CreateError::NameTaken));
    assert_eq!(store.get_document("c", "new").unwrap(), None);
    assert_eq!(
        store.get_document("c", "kept").unwrap().as_deref(),
        Some("old")
    );
    // The store stays usable, for transactions too.
    store
        .transaction(|tx| tx.put_document("c", "after", "1"))
        .unwrap();
    assert!(store.get_document("c", "after").unwrap().is_some());
}

pub fn transaction_rolls_back_on_panic(backing: &Backing) {
    let store = backing.open();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _: Result<(), MetaError> = store.transaction(|tx| {
            tx.put_document("c", "half", "1")?;
            panic!("body panics mid-transaction");
        });
    }));
    assert!(panicked.is_err());
    assert_eq!(store.get_document("c", "half").unwrap(), None);
    store
        .transaction(|tx| tx.put_document("c", "after", "1"))
        .unwrap();
    assert!(backing.open().get_document("c", "after").unwrap().is_some());
}

pub fn uncommitted_writes_are_invisible(backing: &Backing) {
    let (writer, reader) = (backing.open(), backing.open());
    writer.put_document("c", "a", "committed").unwrap();
    let seen_during: Result<Option<String>, MetaError> = writer.transaction(|tx| {
        tx.put_document("c", "a", "uncommitted")?;
        tx.put_document("c", "b", "uncommitted")?;
        // Another instance reads while this transaction is open: committed state only.
        let seen = std::thread::scope(|s| {
            s.spawn(|| {
                (
                    reader.get_document("c", "a").unwrap(),
                    reader.list_documents("c").unwrap().len(),
                )
            })
            .join()
            .unwrap()
        });
        assert_eq!(seen.1, 1);
        Ok(seen.0)
    });
    assert_eq!(seen_during.unwrap().as_deref(), Some("committed"));
    assert_eq!(
        reader.get_document("c", "a").unwrap().as_deref(),
        Some("uncommitted")
    );
}

pub fn no_lost_updates(backing: &Backing) {
    const WRITERS: usize = 6;
    const INCREMENTS: usize = 25;
    race(backing, WRITERS, |store, _| {
        for _ in 0..INCREMENTS {
            store
                .transaction(|tx| {
                    let n: usize = tx
                        .get_document("counter", "n")?
                        .map_or(0, |v| v.parse().unwrap());
                    tx.put_document("counter", "n", &(n + 1).to_string())
                })
                .unwrap();
        }
    });
    let total = backing.open().get_document("counter", "n").unwrap();
    assert_eq!(total, Some((WRITERS * INCREMENTS).to_string()));
}

pub fn one_writer_wins_a_trail_name(backing: &Backing) {
    for round in 0..5 {
        let name = format!("trail-{round}");
        let results = race(backing, 8, |store, _| {
            create_trail(store, "us-east-1", &name)
        });
        let won = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(won, 1, "round {round}: {results:?}");
        assert!(results
            .iter()
            .all(|r| r.is_ok() || r == &Err(CreateError::NameTaken)));
    }
}

pub fn one_writer_wins_the_last_trail_of_a_region(backing: &Backing) {
    let store = backing.open();
    for i in 0..PER_REGION - 1 {
        create_trail(store.as_ref(), "eu-west-1", &format!("existing-{i}")).unwrap();
    }
    create_trail(store.as_ref(), "us-east-1", "elsewhere").unwrap();
    let results = race(backing, 8, |store, i| {
        create_trail(store, "eu-west-1", &format!("new-{i}"))
    });
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert!(results
        .iter()
        .all(|r| r.is_ok() || r == &Err(CreateError::RegionFull)));
    let in_region = store
        .list_documents(TRAILS)
        .unwrap()
        .into_iter()
        .filter(|(_, region)| region == "eu-west-1")
        .count();
    assert_eq!(in_region, PER_REGION);
}

/// `conformance_tests!(module_name, factory)`: every conformance test, as `#[test]`s in
/// `module_name`, each on a fresh backing from `factory()`.
macro_rules! conformance_tests {
    ($module:ident, $factory:expr) => {
        mod $module {
            use super::*;
            conformance_tests!(@each $factory;
                documents_crud, settings_keys_and_accounts, transaction_commits_every_write,
                transaction_rolls_back_on_error, transaction_rolls_back_on_panic,
                uncommitted_writes_are_invisible, no_lost_updates,
                one_writer_wins_a_trail_name, one_writer_wins_the_last_trail_of_a_region);
        }
    };
    (@each $factory:expr; $($test:ident),*) => {
        $(
            #[test]
            fn $test() {
                let backing: Backing = $factory();
                super::$test(&backing);
            }
        )*
    };
}

/// SQLite: every instance is its own connection to one database file.
fn sqlite() -> Backing {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    Backing::new(move || {
        let path = dir.path().join("meta.sqlite");
        Arc::new(SqliteMetaStore::open(&path).unwrap()) as Arc<dyn MetaStore>
    })
}

conformance_tests!(sqlite_store, sqlite);

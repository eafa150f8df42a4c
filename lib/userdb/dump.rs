//! The text form of the user database (`kmpctl db dump` / `kmpctl db load`).
//!
//! One record per line, each a JSON object (JSON Lines), in this order:
//!
//! ```text
//! {"kmpromail":"userdb","version":1}
//! {"type":"domain","name":"example.test","created":1764288000,"quota_bytes":0,"quota_messages":0}
//! {"type":"user","address":"Bob@example.test","password":"$6$...","quota_bytes":0,
//!  "quota_messages":0,"state":"active","mail_path":"","forwards":[],"keep_copy":false,
//!  "pop3_subfolders":false,"login_delay":0,"created":1764288000}
//! {"type":"alias","address":"info@example.test","targets":["Bob@example.test"]}
//! {"type":"list","address":"news@example.test","owners":["Bob@example.test"],"policy":"members",...}
//! ```
//!
//! A list line is the list's record (see `crate::lists::List`); its members
//! and held posts live in the list's own directory, not in the dump.
//!
//! A fetch line is a user's fetch account (`crate::ipc::fetch::FetchAccount`,
//! `{"type":"fetch","owner":"Bob@example.test","name":"gmail",...}`), its
//! password sealed to kmp-fetch's key as stored: a dump shows no password,
//! and a load on a host with the same key pair gives back working accounts.
//! Its owner is kept exactly as written, because the seal is bound to it;
//! the owner must be a user (in the database or on an earlier line).
//!
//! (a user is one line; it is broken above only to fit). The header line is
//! optional on load; empty lines and lines starting with `#` are skipped.
//! Every field but `type` and `name`/`address` may be left out on load and
//! takes its default, so an import script need write only
//! `{"type":"user","address":"a@b.test","password":"$1$..."}`. Dumping a
//! loaded database gives back the same bytes.
//!
//! A load is one transaction: if any line is wrong nothing is written, and
//! the error names the line.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use super::address::{normalize_domain, Address};
use super::lmdb::{key_address, record_key, Lmdb, Stored};
use super::{password, Alias, DbError, Domain, User};

/// The header line's version.
pub const VERSION: u32 = 1;

/// One line of a dump.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Record {
    Domain(Domain),
    User(User),
    Alias(Alias),
    List(crate::lists::List),
    Fetch(crate::ipc::fetch::FetchAccount),
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    kmpromail: String,
    version: u32,
}

/// How many records of each kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub domains: u64,
    pub users: u64,
    pub aliases: u64,
    pub lists: u64,
    pub fetch: u64,
}

/// A load that failed, and where.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {error}")]
pub struct LoadError {
    pub line: u64,
    pub error: DbError,
}

/// Writes every record of `db` to `out`.
pub fn dump(db: &Lmdb, out: &mut dyn Write) -> Result<Counts, DbError> {
    let io = |e: std::io::Error| DbError::Io(format!("writing the dump: {e}"));
    // Opened before the transaction, in which a handle opened later is not valid.
    let fetch = db.fetch_db()?;
    let t = db.read()?;
    let mut n = Counts::default();
    let header = Header {
        kmpromail: "userdb".into(),
        version: VERSION,
    };
    serde_json::to_writer(&mut *out, &header).map_err(|e| DbError::Io(e.to_string()))?;
    out.write_all(b"\n").map_err(io)?;
    let mut line = Vec::with_capacity(512);
    let mut all = vec![
        (db.domains, 0),
        (db.users, 1),
        (db.aliases, 2),
        (db.lists, 3),
    ];
    all.extend(fetch.map(|f| (f, 4)));
    for (db_, kind) in all {
        for kv in db_.iter(&t).map_err(|e| db.err(e))? {
            let (k, v) = kv.map_err(|e| db.err(e))?;
            let corrupt = |e: serde_json::Error| {
                DbError::Corrupt(
                    db.dir().to_path_buf(),
                    format!("record {}: {e}", key_address(k)),
                )
            };
            let rec = match kind {
                0 => {
                    n.domains += 1;
                    Record::Domain(serde_json::from_slice(v).map_err(corrupt)?)
                }
                1 => {
                    n.users += 1;
                    Record::User(serde_json::from_slice(v).map_err(corrupt)?)
                }
                2 => {
                    n.aliases += 1;
                    Record::Alias(serde_json::from_slice(v).map_err(corrupt)?)
                }
                3 => {
                    n.lists += 1;
                    Record::List(serde_json::from_slice(v).map_err(corrupt)?)
                }
                _ => {
                    n.fetch += 1;
                    Record::Fetch(serde_json::from_slice(v).map_err(corrupt)?)
                }
            };
            line.clear();
            // Invariant: our record types serialise infallibly.
            serde_json::to_writer(&mut line, &rec).expect("record serialises");
            line.push(b'\n');
            out.write_all(&line).map_err(io)?;
        }
    }
    out.flush().map_err(io)?;
    Ok(n)
}

/// Loads records from `input` in one transaction. With `replace` the
/// database is emptied first (in the same transaction); without it, a record
/// whose name exists already is an error. `progress` is called every 10,000
/// users and at the end, with the counts so far.
pub fn load(
    db: &Lmdb,
    input: &mut dyn BufRead,
    replace: bool,
    progress: &mut dyn FnMut(&Counts),
) -> Result<Counts, LoadError> {
    let at = |line: u64| move |error: DbError| LoadError { line, error };
    // Made (in its own transaction) before the load's transaction begins.
    let fetch = db.fetch_db_made().map_err(at(0))?;
    let mut t = db.write().map_err(at(0))?;
    let dbs = [db.domains, db.users, db.aliases, db.lists, fetch];
    if replace {
        for d in dbs {
            d.clear(&mut t).map_err(|e| at(0)(db.err(e)))?;
        }
    }
    let mut last: [Option<Vec<u8>>; 5] = [None, None, None, None, None];
    for (i, d) in dbs.into_iter().enumerate() {
        last[i] = d
            .last(&t)
            .map_err(|e| at(0)(db.err(e)))?
            .map(|(k, _)| k.to_vec());
    }
    let mut n = Counts::default();
    let mut buf = String::with_capacity(512);
    let mut value = Vec::with_capacity(512);
    let mut lineno = 0u64;
    let mut last_domain = (String::new(), String::new());
    loop {
        buf.clear();
        match input.read_line(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                return Err(at(lineno + 1)(DbError::Invalid(format!(
                    "cannot read the input: {e}"
                ))))
            }
        }
        lineno += 1;
        let line = buf.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with("{\"kmpromail\"") {
            let h: Header = serde_json::from_str(line)
                .map_err(|e| at(lineno)(DbError::Invalid(format!("bad header: {e}"))))?;
            if h.kmpromail != "userdb" || h.version != VERSION {
                return Err(at(lineno)(DbError::Invalid(format!(
                    "this is a {} dump of version {}, not a userdb dump of version {VERSION}",
                    h.kmpromail, h.version
                ))));
            }
            continue;
        }
        let rec: Record = serde_json::from_str(line)
            .map_err(|e| at(lineno)(DbError::Invalid(format!("not a valid record: {e}"))))?;
        let err = at(lineno);
        let (dbh, key, kind) = match rec {
            Record::Domain(mut d) => {
                d.name = normalize_domain(&d.name).map_err(|e| err(e.into()))?;
                value.clear();
                // Invariant: our record types serialise infallibly.
                serde_json::to_writer(&mut value, &d).expect("record serialises");
                n.domains += 1;
                (db.domains, d.name.into_bytes(), "domain")
            }
            Record::User(mut u) => {
                let a = Address::parse(&u.address).map_err(|e| err(e.into()))?;
                // Most lines share their domain with the one before.
                if last_domain.0 != a.domain() {
                    need_domain(db, &t, a.domain()).map_err(&err)?;
                    last_domain = (a.domain().to_string(), String::new());
                }
                u.address = a.to_string();
                if !u.password.is_empty() {
                    password::check_hash(&u.password).map_err(|e| err(e.into()))?;
                }
                for f in u.forwards.iter_mut() {
                    *f = Address::parse(f).map_err(|e| err(e.into()))?.to_string();
                }
                value.clear();
                // Invariant: our record types serialise infallibly.
                serde_json::to_writer(&mut value, &Stored(&u)).expect("record serialises");
                n.users += 1;
                (db.users, record_key(a.domain(), a.local()), "user")
            }
            Record::Alias(mut al) => {
                let a = Address::parse_alias(&al.address).map_err(|e| err(e.into()))?;
                need_domain(db, &t, a.domain()).map_err(&err)?;
                al.address = if a.is_catch_all() {
                    format!("@{}", a.domain())
                } else {
                    a.to_string()
                };
                if al.targets.is_empty() {
                    return Err(err(DbError::Invalid(format!(
                        "alias {} has no targets",
                        al.address
                    ))));
                }
                for x in al.targets.iter_mut() {
                    *x = Address::parse(x).map_err(|e| err(e.into()))?.to_string();
                }
                value.clear();
                // Invariant: our record types serialise infallibly.
                serde_json::to_writer(&mut value, &al).expect("record serialises");
                n.aliases += 1;
                (db.aliases, record_key(a.domain(), a.local()), "alias")
            }
            Record::List(mut l) => {
                let a = Address::parse(&l.address).map_err(|e| err(e.into()))?;
                need_domain(db, &t, a.domain()).map_err(&err)?;
                l.address = a.to_string();
                for x in l
                    .owners
                    .iter_mut()
                    .chain(l.moderators.iter_mut())
                    .chain(l.posters.iter_mut())
                {
                    *x = Address::parse(x).map_err(|e| err(e.into()))?.to_string();
                }
                value.clear();
                // Invariant: our record types serialise infallibly.
                serde_json::to_writer(&mut value, &l).expect("record serialises");
                n.lists += 1;
                (db.lists, record_key(a.domain(), a.local()), "list")
            }
            Record::Fetch(f) => {
                f.check().map_err(|e| err(DbError::Invalid(e)))?;
                let a = Address::parse(&f.owner).map_err(|e| err(e.into()))?;
                let key = record_key(a.domain(), a.local());
                if db
                    .users
                    .get(&t, &key)
                    .map_err(|e| err(db.err(e)))?
                    .is_none()
                {
                    return Err(err(DbError::NotFound(format!(
                        "fetch account {:?}: user {} is neither in the database nor on an earlier line",
                        f.name, f.owner
                    ))));
                }
                value.clear();
                // Invariant: our record types serialise infallibly.
                serde_json::to_writer(&mut value, &f).expect("record serialises");
                n.fetch += 1;
                (fetch, super::fetch::account_key(&a, &f.name), "fetch")
            }
        };
        // Keys past the last one in their database are appended: LMDB then
        // fills pages instead of splitting them in half (a dump is in key
        // order, so loading one is all appends).
        let slot = match kind {
            "domain" => 0,
            "user" => 1,
            "alias" => 2,
            "list" => 3,
            _ => 4,
        };
        let flags = if last[slot].as_ref().is_none_or(|l| key > *l) {
            heed::PutFlags::APPEND
        } else {
            heed::PutFlags::NO_OVERWRITE
        };
        let r = dbh.put_with_flags(&mut t, flags, &key, &value);
        if r.is_ok() && flags == heed::PutFlags::APPEND {
            last[slot] = Some(key.clone());
        }
        match r {
            Ok(()) => {}
            Err(heed::Error::Mdb(heed::MdbError::KeyExist)) => {
                return Err(err(DbError::Exists(format!(
                    "{kind} {}",
                    key_address(&key)
                ))))
            }
            Err(e) => return Err(err(db.err(e))),
        }
        if kind == "user" && n.users.is_multiple_of(10_000) {
            progress(&n);
        }
    }
    t.commit().map_err(|e| at(lineno)(db.err(e)))?;
    progress(&n);
    Ok(n)
}

fn need_domain(db: &Lmdb, t: &heed::RoTxn, domain: &str) -> Result<(), DbError> {
    match db
        .domains
        .get(t, domain.as_bytes())
        .map_err(|e| db.err(e))?
    {
        Some(_) => Ok(()),
        None => Err(DbError::NotFound(format!(
            "domain {domain} is neither in the database nor on an earlier line"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::userdb::Directory;

    const SAMPLE: &str = concat!(
        "{\"kmpromail\":\"userdb\",\"version\":1}\n",
        "{\"type\":\"domain\",\"name\":\"example.test\",\"created\":7,\"quota_bytes\":0,\"quota_messages\":0}\n",
        "{\"type\":\"domain\",\"name\":\"xn--bcher-kva.example\",\"created\":7,\"quota_bytes\":5,\"quota_messages\":0}\n",
        "{\"type\":\"user\",\"address\":\"Bob@example.test\",\"password\":\"$1$5pZSV9va$azfrPr6af3Fc7dLblQXVa0\",\"quota_bytes\":1000,\"quota_messages\":10,\"state\":\"disabled\",\"mail_path\":\"/x/y\",\"forwards\":[\"a@b.test\"],\"keep_copy\":true,\"pop3_subfolders\":true,\"login_delay\":60,\"created\":8}\n",
        "{\"type\":\"user\",\"address\":\"ana@xn--bcher-kva.example\",\"password\":\"\",\"quota_bytes\":0,\"quota_messages\":0,\"state\":\"active\",\"mail_path\":\"\",\"forwards\":[],\"keep_copy\":false,\"pop3_subfolders\":false,\"login_delay\":0,\"created\":9}\n",
        "{\"type\":\"alias\",\"address\":\"@example.test\",\"targets\":[\"Bob@example.test\"]}\n",
        "{\"type\":\"alias\",\"address\":\"info@example.test\",\"targets\":[\"Bob@example.test\",\"x@other.test\"]}\n",
    );

    fn fresh() -> (tempfile::TempDir, Lmdb) {
        let d = tempfile::tempdir().unwrap();
        let db = Lmdb::create(&d.path().join("db")).unwrap();
        (d, db)
    }

    #[test]
    fn dump_load_round_trips_exactly() {
        let (_d, db) = fresh();
        let n = load(&db, &mut SAMPLE.as_bytes(), false, &mut |_| {}).unwrap();
        assert_eq!((n.domains, n.users, n.aliases), (2, 2, 2));
        let mut out = Vec::new();
        dump(&db, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), SAMPLE);
        let bob = db
            .user(&Address::parse("bob@EXAMPLE.test").unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(bob.login_delay, 60);
    }

    #[test]
    fn short_records_take_defaults_and_are_normalised() {
        let (_d, db) = fresh();
        let text = "{\"type\":\"domain\",\"name\":\"B\u{fc}cher.Example\"}\n# comment\n\n{\"type\":\"user\",\"address\":\"X@B\u{fc}cher.example\",\"password\":\"$2y$05$bvIG6Nmid91Mu9RcmmWZfO5HJIMCT8riNW0hEp8f6/FuA2/mHZFpe\"}\n";
        load(&db, &mut text.as_bytes(), false, &mut |_| {}).unwrap();
        let u = db.users(None).unwrap();
        assert_eq!(u[0].address, "X@xn--bcher-kva.example");
        assert_eq!(u[0].state, crate::userdb::State::Active);
    }

    #[test]
    fn a_bad_line_writes_nothing_and_names_the_line() {
        let (_d, db) = fresh();
        load(&db, &mut SAMPLE.as_bytes(), false, &mut |_| {}).unwrap();
        let mut before = Vec::new();
        dump(&db, &mut before).unwrap();
        for (text, line, what) in [
            ("{\"type\":\"domain\",\"name\":\"new.test\"}\n{\"type\":\"user\",\"address\":\"bad address@new.test\"}\n", 2, "local part"),
            ("{\"type\":\"user\",\"address\":\"u@nowhere.test\"}\n", 1, "domain nowhere.test"),
            ("{\"type\":\"domain\",\"name\":\"new.test\"}\n{\"type\":\"user\",\"address\":\"u@new.test\",\"password\":\"plain\"}\n", 2, "not a usable hash"),
            ("{\"type\":\"user\",\"address\":\"BOB@example.test\"}\n", 1, "exists"),
            ("{\"type\":\"list\",\"owners\":[]}\n", 1, "not a valid record"),
            ("{\"type\":\"list\",\"address\":\"l@nowhere.test\"}\n", 1, "domain nowhere.test"),
            ("garbage\n", 1, "not a valid record"),
            ("{\"kmpromail\":\"queue\",\"version\":1}\n", 1, "not a userdb dump"),
        ] {
            let e = load(&db, &mut text.as_bytes(), false, &mut |_| {}).unwrap_err();
            assert_eq!(e.line, line, "{text}: {e}");
            assert!(e.to_string().contains(what), "{text}: {e}");
            let mut after = Vec::new();
            dump(&db, &mut after).unwrap();
            assert_eq!(before, after, "a failed load changed the database");
        }
        // --replace empties first, in the same transaction.
        let n = load(&db, &mut SAMPLE.as_bytes(), true, &mut |_| {}).unwrap();
        assert_eq!(n.users, 2);
        assert_eq!(db.users(None).unwrap().len(), 2);
    }

    #[test]
    fn lists_are_dumped_and_loaded_with_their_record() {
        let (_d, db) = fresh();
        load(&db, &mut SAMPLE.as_bytes(), false, &mut |_| {}).unwrap();
        let line = "{\"type\":\"list\",\"address\":\"News@EXAMPLE.test\",\"owners\":[\"bob@Example.Test\"],\"policy\":\"announce\"}\n";
        let n = load(&db, &mut line.as_bytes(), false, &mut |_| {}).unwrap();
        assert_eq!(n.lists, 1);
        let mut out = Vec::new();
        let c = dump(&db, &mut out).unwrap();
        assert_eq!(c.lists, 1);
        let text = String::from_utf8(out).unwrap();
        let last = text.lines().last().unwrap();
        assert!(
            last.starts_with("{\"type\":\"list\",\"address\":\"News@example.test\""),
            "{last}"
        );
        assert!(last.contains("\"owners\":[\"bob@example.test\"]"), "{last}");
        let (_d2, db2) = fresh();
        load(&db2, &mut text.as_bytes(), false, &mut |_| {}).unwrap();
        let mut again = Vec::new();
        dump(&db2, &mut again).unwrap();
        assert_eq!(String::from_utf8(again).unwrap(), text);
        // The list's name is taken for users and aliases, and its role addresses too.
        let e = load(
            &db,
            &mut "{\"type\":\"list\",\"address\":\"news@example.test\"}\n".as_bytes(),
            false,
            &mut |_| {},
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("list news@example.test exists"),
            "{e}"
        );
    }

    #[test]
    fn fetch_accounts_are_dumped_sealed_and_loaded_for_their_owner() {
        let (_d, db) = fresh();
        load(&db, &mut SAMPLE.as_bytes(), false, &mut |_| {}).unwrap();
        // The owner as written (the seal is bound to it), the password as sealed.
        let line = "{\"type\":\"fetch\",\"owner\":\"Bob@example.test\",\"name\":\"新浪\",\"protocol\":\"pop3\",\"host\":\"pop.sina.example\",\"port\":995,\"tls\":\"implicit\",\"verify\":true,\"username\":\"bob\",\"password\":\"k1:SEALED\",\"folders\":[],\"target\":\"\",\"keep\":{\"mode\":\"delete_after\",\"days\":7},\"interval\":0,\"enabled\":true,\"created\":5}\n";
        let n = load(&db, &mut line.as_bytes(), false, &mut |_| {}).unwrap();
        assert_eq!(n.fetch, 1);
        let mut out = Vec::new();
        assert_eq!(dump(&db, &mut out).unwrap().fetch, 1);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().last().unwrap(), line.trim_end(), "{text}");
        let bob = Address::parse("bob@example.test").unwrap();
        let a = db.fetch_account(&bob, "新浪").unwrap().unwrap();
        assert_eq!(
            (a.owner.as_str(), a.password.as_str()),
            ("Bob@example.test", "k1:SEALED")
        );
        // A whole dump loads into an empty database and dumps the same.
        let (_d2, db2) = fresh();
        load(&db2, &mut text.as_bytes(), false, &mut |_| {}).unwrap();
        let mut again = Vec::new();
        dump(&db2, &mut again).unwrap();
        assert_eq!(String::from_utf8(again).unwrap(), text);
        // An owner who is no user, a bad record, the same name twice: nothing written.
        for (bad, what) in [
            (line.replace("Bob@", "nobody@"), "neither in the database"),
            (line.replace("\"port\":995", "\"port\":0"), "port"),
            (line.to_string(), "exists"),
        ] {
            let e = load(&db, &mut bad.as_bytes(), false, &mut |_| {}).unwrap_err();
            assert!(e.to_string().contains(what), "{bad}: {e}");
        }
        // --replace empties the accounts too.
        load(&db, &mut SAMPLE.as_bytes(), true, &mut |_| {}).unwrap();
        assert!(db.fetch_accounts(None).unwrap().is_empty());
    }

    #[test]
    fn duplicate_in_load_names_the_address_not_the_reversed_key() {
        let (_d, db) = fresh();
        load(&db, &mut SAMPLE.as_bytes(), false, &mut |_| {}).unwrap();
        for (text, what) in [
            ("{\"type\":\"user\",\"address\":\"BOB@example.test\"}\n", "user bob@example.test exists"),
            ("{\"type\":\"alias\",\"address\":\"info@example.test\",\"targets\":[\"a@b.test\"]}\n", "alias info@example.test exists"),
            ("{\"type\":\"alias\",\"address\":\"@example.test\",\"targets\":[\"a@b.test\"]}\n", "alias @example.test exists"),
            ("{\"type\":\"domain\",\"name\":\"example.test\"}\n", "domain example.test exists"),
        ] {
            let e = load(&db, &mut text.as_bytes(), false, &mut |_| {}).unwrap_err();
            assert!(e.to_string().contains(what), "{text}: {e}");
        }
    }
}

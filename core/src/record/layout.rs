//! The document layout (module documentation of [`super`]): entries under
//! entries by logical key `<prefix>:<id>` in their buckets or at v1 root
//! keys (`place.rs` says where), JSON-string entries and map entries, and the
//! readers that turn a map's fields into typed values. Nothing here knows a
//! domain rule.

use super::*;

impl CareRecord {
    pub(super) fn put_entry<T: Serialize>(&mut self, prefix: &str, id: &str, entry: &T) -> Result<String, RecordError> {
        let mut value = serde_json::to_value(entry).map_err(|e| invalid("entry", e.to_string()))?;
        if let Some(map) = value.as_object_mut() {
            map.remove("id");
        }
        let text = value.to_string();
        self.change(|tx| {
            let (obj, key) = entry_home(tx, prefix, id)?;
            Ok(tx.put(&obj, key, text)?)
        })?;
        Ok(id.to_owned())
    }

    /// Every readable entry of kind `prefix` (one JSON string each): v1's
    /// root keys, then every bucket (`place.rs`).
    pub(super) fn entries<T: DeserializeOwned>(&self, prefix: &str) -> std::vec::IntoIter<T> {
        let mut entries = Vec::new();
        self.each_entry_text(prefix, &mut |id, text| entries.extend(parse_entry(text, id)));
        entries.into_iter()
    }

    /// Calls `visit` with the id and text of every string entry of kind
    /// `prefix`. Not generic, so that the walk is compiled once, not once
    /// per entry type (it weighs in the mobile library).
    fn each_entry_text(&self, prefix: &str, visit: &mut dyn FnMut(&str, &str)) {
        for item in self.doc.map_range(ROOT, prefix_range(prefix)) {
            if let ValueRef::Scalar(ScalarValueRef::Str(text)) = &item.value {
                visit(&item.key[prefix.len()..], text);
            }
        }
        for (bucket, digits) in place::buckets(&self.doc, prefix) {
            for item in self.doc.map_range(&bucket, ..) {
                if let ValueRef::Scalar(ScalarValueRef::Str(text)) = &item.value {
                    if place::in_bucket(&item.key, &digits) {
                        visit(&item.key, text);
                    }
                }
            }
        }
    }

    /// The entries of kind `prefix` among `keys` (logical keys), parsed as
    /// [`CareRecord::entries`] parses them, without scanning the others.
    pub(super) fn entries_among<T: DeserializeOwned>(&self, prefix: &str, keys: &BTreeSet<String>) -> Vec<T> {
        keys.range(prefix_range(prefix))
            .filter_map(|key| parse_entry(&self.entry_string(key)?, &key[prefix.len()..]))
            .collect()
    }

    /// The map entries (sessions, journal entries) of kind `prefix`, each
    /// with its id: v1's root keys, then every bucket.
    pub(super) fn objects(&self, prefix: &str) -> Vec<(String, ObjId)> {
        let prefix_len = prefix.len();
        let mut objects: Vec<(String, ObjId)> = self
            .doc
            .map_range(ROOT, prefix_range(prefix))
            .filter_map(|item| match item.value {
                ValueRef::Object(ObjType::Map) => Some((item.key[prefix_len..].to_owned(), item.id())),
                _ => None,
            })
            .collect();
        for (bucket, digits) in place::buckets(&self.doc, prefix) {
            objects.extend(self.doc.map_range(&bucket, ..).filter_map(|item| match item.value {
                ValueRef::Object(ObjType::Map) if place::in_bucket(&item.key, &digits) => {
                    Some((item.key.to_string(), item.id()))
                }
                _ => None,
            }));
        }
        objects
    }

    /// The map of the entry at logical key `key`, wherever it lives.
    pub(super) fn map_obj(&self, key: &str) -> Option<ObjId> {
        match place::find(&self.doc, key)? {
            (automerge::Value::Object(ObjType::Map), obj) => Some(obj),
            _ => None,
        }
    }

    /// The winning string value of the entry at logical key `key`.
    pub(super) fn entry_string(&self, key: &str) -> Option<String> {
        match place::find(&self.doc, key)? {
            (automerge::Value::Scalar(s), _) => s.as_str().map(str::to_owned),
            _ => None,
        }
    }

    pub(super) fn session_obj(&self, id: &str) -> Result<ObjId, RecordError> {
        self.map_obj(&format!("{SESSION}{id}")).ok_or_else(|| not_found("session", id))
    }

    pub(super) fn live_journal_obj(&self, id: &str) -> Result<ObjId, RecordError> {
        self.map_obj(&format!("{JOURNAL}{id}"))
            .filter(|obj| self.get_string(obj, "deleted").is_none())
            .ok_or_else(|| not_found("journal entry", id))
    }

    pub(super) fn check_session_link(&self, session_id: Option<&str>) -> Result<(), RecordError> {
        match session_id {
            Some(id) if self.session_obj(id).is_err() => Err(invalid("session_id", "no such session")),
            _ => Ok(()),
        }
    }

    pub(super) fn get_string(&self, obj: &ObjId, key: &str) -> Option<String> {
        match self.doc.get(obj, key).ok()?? {
            (automerge::Value::Scalar(s), _) => s.as_str().map(str::to_owned),
            _ => None,
        }
    }

    /// Every string field of the map `obj` in one pass, each with its
    /// winning value first and then any concurrent ones. Automerge seeks each
    /// key separately (a few µs per key in 0.12), so one range over the object
    /// is many times cheaper than reading it key by key; `get_all` is asked only
    /// for keys that are in conflict.
    pub(super) fn fields(&self, obj: &ObjId) -> Fields {
        self.fields_but(obj, None)
    }

    /// A session's fields but its answer entries: all a session, its
    /// current answers and its checklist are read from.
    pub(super) fn session_fields(&self, obj: &ObjId) -> Fields {
        self.fields_but(obj, Some(super::ANSWER_ENTRY))
    }

    /// An entry map's fields but those starting with `skip` (a session's
    /// answer entries, `h:`, which only the answer history reads: a session
    /// answered many times holds many).
    pub(super) fn fields_but(&self, obj: &ObjId, skip: Option<&str>) -> Fields {
        let mut fields = Vec::new();
        for item in self.doc.map_range(obj, ..) {
            if skip.is_some_and(|prefix| item.key.starts_with(prefix)) {
                continue;
            }
            let mut values: Vec<String> = match &item.value {
                ValueRef::Scalar(ScalarValueRef::Str(text)) => vec![text.to_string()],
                _ => Vec::new(),
            };
            if item.conflict {
                for (value, _) in self.doc.get_all(obj, item.key.as_ref()).unwrap_or_default() {
                    if let Some(s) = value.as_str() {
                        if !values.iter().any(|v| v == s) {
                            values.push(s.to_owned());
                        }
                    }
                }
            }
            if !values.is_empty() {
                fields.push((item.key.into_owned(), values));
            }
        }
        // Automerge iterates keys in order already; sorting keeps `Fields`'
        // binary search independent of that (and costs one pass when sorted).
        fields.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Fields(fields)
    }
}

/// The string fields of one map object, as [`CareRecord::fields`] read them:
/// sorted by key, each with the winning value first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Fields(Vec<(String, Vec<String>)>);

impl Fields {
    /// The fields as JSON, `[[key, [values…]], …]`: how a device's stored
    /// current state keeps a session (`crate::care_store`).
    pub(crate) fn to_json(&self) -> Value {
        // Loops rather than iterator chains here and below: smaller in the mobile library.
        let mut pairs = Vec::with_capacity(self.0.len());
        for (key, values) in &self.0 {
            let mut texts = Vec::with_capacity(values.len());
            for value in values {
                texts.push(Value::String(value.clone()));
            }
            pairs.push(Value::Array(vec![Value::String(key.clone()), Value::Array(texts)]));
        }
        Value::Array(pairs)
    }

    /// Fields from [`Fields::to_json`]'s form; `None` for anything else.
    pub(crate) fn from_json(json: &Value) -> Option<Fields> {
        let mut fields = Vec::new();
        for pair in json.as_array()? {
            let (key, json_values) = (pair.get(0)?.as_str()?, pair.get(1)?.as_array()?);
            let mut values = Vec::with_capacity(json_values.len());
            for value in json_values {
                values.push(value.as_str()?.to_owned());
            }
            fields.push((key.to_owned(), values));
        }
        // `get` searches: keys must be sorted and unique, as `to_json` writes them.
        fields.windows(2).all(|pair| pair[0].0 < pair[1].0).then_some(Fields(fields))
    }

    /// The winning value of `key`.
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.all(key).first().map(String::as_str)
    }

    /// The winning value of `key`, then any concurrent ones.
    pub(super) fn all(&self, key: &str) -> &[String] {
        match self.0.binary_search_by(|(k, _)| k.as_str().cmp(key)) {
            Ok(i) => &self.0[i].1,
            Err(_) => &[],
        }
    }

    /// Every key starting with `prefix`, without the prefix, and its values.
    pub(super) fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a [String])> + 'a {
        let start = self.0.partition_point(|(k, _)| k.as_str() < prefix);
        self.0[start..].iter().map_while(move |(k, v)| Some((k.strip_prefix(prefix)?, v.as_slice())))
    }
}

/// A session from its fields; `None` when they do not make one.
pub(crate) fn read_session(id: &str, fields: &Fields) -> Option<Session> {
    let time = |key| fields.get(key).and_then(|s| DateTime::parse_from_rfc3339(s).ok());
    let mut starts = fields.all("start").iter().filter_map(|s| DateTime::parse_from_rfc3339(s).ok());
    Some(Session {
        id: id.to_owned(),
        scheduled_start: starts.next()?,
        conflicting_starts: starts.collect(),
        time_zone: fields.get("tz")?.to_owned(),
        scheduled_by: if fields.get("by")? == "clinic" { Party::Clinic } else { Party::Client },
        started_at: time("started_at"),
        ended_at: time("ended_at"),
        cancelled: fields.get("cancelled").and_then(|s| serde_json::from_str(s).ok()),
    })
}

pub(super) fn read_journal(id: &str, fields: &Fields) -> Option<JournalEntry> {
    if fields.get("deleted").is_some() {
        return None;
    }
    let time = |key| fields.get(key).and_then(|s| DateTime::parse_from_rfc3339(s).ok()).map(|t| t.with_timezone(&Utc));
    let mut texts = fields.all("text").iter().cloned();
    Some(JournalEntry {
        id: id.to_owned(),
        created_at: time("created_at")?,
        edited_at: time("edited_at"),
        text: texts.next()?,
        conflicting_texts: texts.collect(),
        prompt_id: fields.get("prompt_id").map(str::to_owned),
        session_id: fields.get("session_id").map(str::to_owned),
        private: false,
    })
}

/// Newest first, ties by id: the order journal listings use.
pub(crate) fn sort_journal(entries: &mut [JournalEntry]) {
    entries.sort_unstable_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.id.cmp(&b.id)));
}

/// `items` ordered by `key`. Every caller's key ends with the entry's id, so
/// no two are equal and an unstable sort (smaller in the mobile library)
/// gives the one order a stable sort would.
pub(super) fn sorted<T, K: Ord>(mut items: Vec<T>, key: impl Fn(&T) -> K) -> Vec<T> {
    items.sort_unstable_by_key(|item| key(item));
    items
}

/// Where a new entry `<prefix><id>` is written in `tx`: its bucket (the
/// winning map of its key, created when the record lacks one) and the id;
/// the root and the logical key for kinds that are not bucketed.
pub(super) fn entry_home(
    tx: &mut automerge::transaction::Transaction<'_>,
    prefix: &str,
    id: &str,
) -> Result<(ObjId, String), RecordError> {
    let Some(bucket) = place::bucket_key(prefix, id) else { return Ok((ROOT, format!("{prefix}{id}"))) };
    let existing = match tx.get(ROOT, bucket.as_str())? {
        Some((automerge::Value::Object(ObjType::Map), obj)) => Some(obj),
        _ => None,
    };
    let obj = match existing {
        Some(obj) => obj,
        None => tx.put_object(ROOT, bucket.as_str(), ObjType::Map)?,
    };
    Ok((obj, id.to_owned()))
}

/// A new random 128-bit id, as 32 hex digits.
pub fn new_id() -> String {
    let mut bytes = [0u8; 16];
    // The operating system's generator does not fail where katcore runs
    // (Linux, Android, Apple); an id must never be made from anything less.
    getrandom::fill(&mut bytes).unwrap_or_else(|_| panic!("the system random number generator is available"));
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An entry's stored JSON with its `id` (the logical key after the kind prefix) added.
pub(super) fn parse_entry<T: DeserializeOwned>(text: &str, id: &str) -> Option<T> {
    let mut value: Value = serde_json::from_str(text).ok()?;
    value.as_object_mut()?.insert("id".into(), Value::from(id));
    serde_json::from_value(value).ok()
}

pub(super) fn prefix_range(prefix: &str) -> Range<String> {
    // Keys of one kind are `x:<id>`; `;` is the character after `:`.
    let end = format!("{};", &prefix[..prefix.len() - 1]);
    prefix.to_owned()..end
}

pub(super) fn party_str(party: Party) -> &'static str {
    match party {
        Party::Client => "client",
        Party::Clinic => "clinic",
    }
}

pub(super) fn to_json_string<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

//! The stream `{P}:log` as an [`EventLog`]: delivery cursors in the hash `{P}:cursors`,
//! one script each.
//!
//! A position is a stream id `<ms>-<seq>` in one integer, `ms << 20 | seq`: the scripts
//! that log a change never give an entry a sequence number of 2^20 or more (they move on to
//! the next millisecond), and Redis orders ids as these integers, so positions increase in
//! script (commit) order and `read_after(p)` is the stream from the id of `p`, exclusive.
//! Lua's numbers are doubles, too narrow for a position: the scripts work on ids.
//!
//! An entry's [id](Logged::id) is its field `i`, 128 bits drawn from a random seed the node
//! sends with each script (an entry written without one, by an earlier version, has the
//! first 128 bits of the SHA-1 of the stream's key and its id instead).
//!
//! Cursor `name` is the fields `<d>:p` (position, a stream id), `<d>:h` (holder), `<d>:l`
//! (lease end, µs of Redis's clock) and `<d>:a` (ids acknowledged past the position,
//! space-separated) of `{P}:cursors`, where `<d>` is the SHA-256 of the name in hex: no
//! name reaches another cursor's fields or another key. The hash expires a day after the
//! last change logged or the last cursor step, whichever is later: the cursors live as
//! long as the log they point into.

use std::{sync::LazyLock, time::Duration};

use futures_util::{future::BoxFuture, FutureExt};
use redis::Script;
use sha2::{Digest, Sha256};

use crate::store::{
    hex_string,
    log::{EventLog, Logged},
    StoreError,
};

use super::{
    relay::{decode_event, malformed},
    scripts::script,
    RedisStore,
};

/// Bits of a position that hold the stream id's sequence number.
const SEQ_BITS: u32 = 20;

/// The stream id of `position`.
fn stream_id(position: u64) -> String {
    format!(
        "{}-{}",
        position >> SEQ_BITS,
        position & ((1 << SEQ_BITS) - 1)
    )
}

/// The position of the stream id `id`, if it is one.
fn position_of(id: &str) -> Result<u64, StoreError> {
    let (ms, seq) = id.split_once('-').ok_or_else(|| malformed("log id"))?;
    let (ms, seq): (u64, u64) = match (ms.parse(), seq.parse()) {
        (Ok(ms), Ok(seq)) => (ms, seq),
        _ => return Err(malformed("log id")),
    };
    if seq >> SEQ_BITS != 0 || ms >> (64 - SEQ_BITS) != 0 {
        return Err(malformed("log id"));
    }
    Ok(ms << SEQ_BITS | seq)
}

/// Lua shared by the log's scripts. KEYS[1] is the log, KEYS[2] the cursors, ARGV[1] the
/// cursor's digest.
const LOG_LUA: &str = r"
local function split(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
-- Whether stream id a comes after b.
local function after(a, b)
  local ams, aseq = split(a)
  local bms, bseq = split(b)
  return ams > bms or (ams == bms and aseq > bseq)
end
local function field(e, name)
  local f = e[2]
  for k = 1, #f, 2 do
    if f[k] == name then return f[k + 1] end
  end
  return false
end
local function entry_id(e)
  return field(e, 'i') or string.sub(redis.sha1hex(KEYS[1] .. e[1]), 1, 32)
end
local function put(out, e)
  table.insert(out, e[1])
  table.insert(out, entry_id(e))
  table.insert(out, field(e, 'e') or '')
end
-- The cursor's position, at the log's end if it has none; renews the cursors' life.
local function position()
  local f = ARGV[1] .. ':p'
  local p = redis.call('HGET', KEYS[2], f)
  if not p then
    local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
    p = last and last[1] or '0-0'
    redis.call('HSET', KEYS[2], f, p)
  end
  redis.call('PEXPIRE', KEYS[2], 86400000)
  return p
end
local function acked()
  local set = {}
  for id in string.gmatch(redis.call('HGET', KEYS[2], ARGV[1] .. ':a') or '', '%S+') do
    set[id] = true
  end
  return set
end
local function lease_end(ms)
  return string.format('%.0f', now_us() + tonumber(ms) * 1000)
end
";

fn log_script(body: &str) -> Script {
    script(&format!("{LOG_LUA}\n{body}"))
}

/// Returns the cursor's position.
static CURSOR: LazyLock<Script> = LazyLock::new(|| log_script("return position()"));

/// KEYS: log. ARGV: from (exclusive), count. Returns {id, entry id, payload, ...}.
static READ_AFTER: LazyLock<Script> = LazyLock::new(|| {
    log_script(
        r"
local out = {}
for _, e in ipairs(redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])) do
  put(out, e)
end
return out
",
    )
});

/// ARGV: digest, holder, lease (ms). Returns the position, or false while another
/// holder's lease runs.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    log_script(
        r"
local p = position()
local h = redis.call('HMGET', KEYS[2], ARGV[1] .. ':h', ARGV[1] .. ':l')
if h[1] and h[1] ~= ARGV[2] and tonumber(h[2] or '0') >= now_us() then return false end
redis.call('HSET', KEYS[2], ARGV[1] .. ':h', ARGV[2], ARGV[1] .. ':l', lease_end(ARGV[3]))
return p
",
    )
});

/// ARGV: digest, holder, position (a stream id), lease (ms). Returns 1 if moved (never
/// back) and renewed, 0 if `holder` does not hold the cursor.
static ADVANCE: LazyLock<Script> = LazyLock::new(|| {
    log_script(
        r"
if redis.call('HGET', KEYS[2], ARGV[1] .. ':h') ~= ARGV[2] then return 0 end
local p = position()
if after(ARGV[3], p) then redis.call('HSET', KEYS[2], ARGV[1] .. ':p', ARGV[3]) end
redis.call('HSET', KEYS[2], ARGV[1] .. ':l', lease_end(ARGV[4]))
return 1
",
    )
});

/// ARGV: digest, holder.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    log_script(
        r"
if redis.call('HGET', KEYS[2], ARGV[1] .. ':h') == ARGV[2] then
  redis.call('HDEL', KEYS[2], ARGV[1] .. ':h', ARGV[1] .. ':l')
end
return 0
",
    )
});

/// ARGV: digest, limit. Returns {id, entry id, payload, ...} of the entries past the
/// position not acknowledged, oldest first.
static UNACKNOWLEDGED: LazyLock<Script> = LazyLock::new(|| {
    log_script(
        r"
local p = position()
local done = acked()
local out, from, want = {}, '(' .. p, tonumber(ARGV[2])
while want > 0 do
  local page = redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', 100)
  for _, e in ipairs(page) do
    if want > 0 and not done[e[1]] then
      put(out, e)
      want = want - 1
    end
  end
  if #page < 100 then break end
  from = '(' .. page[#page][1]
end
return out
",
    )
});

/// ARGV: digest, then (stream id, entry id) pairs. Records those that name an entry past
/// the position, then moves the position past every leading acknowledged entry.
static ACKNOWLEDGE: LazyLock<Script> = LazyLock::new(|| {
    log_script(
        r"
local p = position()
local done = acked()
for k = 2, #ARGV - 1, 2 do
  local id = ARGV[k]
  if after(id, p) and not done[id] then
    local e = redis.call('XRANGE', KEYS[1], id, id)[1]
    if e and entry_id(e) == ARGV[k + 1] then done[id] = true end
  end
end
local from = '(' .. p
while true do
  local page = redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', 100)
  local open = false
  for _, e in ipairs(page) do
    if not done[e[1]] then
      open = true
      break
    end
    p = e[1]
  end
  if open or #page < 100 then break end
  from = '(' .. p
end
local left = {}
for id in pairs(done) do
  if after(id, p) then table.insert(left, id) end
end
redis.call('HSET', KEYS[2], ARGV[1] .. ':p', p)
if #left == 0 then
  redis.call('HDEL', KEYS[2], ARGV[1] .. ':a')
else
  redis.call('HSET', KEYS[2], ARGV[1] .. ':a', table.concat(left, ' '))
end
return 0
",
    )
});

fn lease_arg(lease: Duration) -> u64 {
    u64::try_from(lease.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// The entries of a script's {id, entry id, payload, ...}; a malformed payload is logged
/// and skipped, as the relay does.
fn entries(reply: &[String]) -> Result<Vec<Logged>, StoreError> {
    let mut entries = Vec::with_capacity(reply.len() / 3);
    for triple in reply.chunks(3) {
        let [id, entry, payload] = triple else {
            return Err(malformed("log entry"));
        };
        let position = position_of(id)?;
        let id = u128::from_str_radix(entry, 16).map_err(|_| malformed("log entry id"))?;
        match decode_event(payload, "") {
            Ok(Some(event)) => entries.push(Logged {
                position,
                id,
                event,
            }),
            _ => tracing::warn!(position, "a malformed revocation event in Redis"),
        }
    }
    Ok(entries)
}

impl RedisStore {
    fn log_key(&self) -> String {
        format!("{}log", self.config.tag)
    }

    fn cursors_key(&self) -> String {
        format!("{}cursors", self.config.tag)
    }

    /// Runs a cursor script: KEYS log and cursors, ARGV the digest of `name`, then `args`.
    async fn on_cursor<T: redis::FromRedisValue>(
        &self,
        script: &Script,
        name: &str,
        args: &[String],
    ) -> Result<T, StoreError> {
        let (log, cursors) = (self.log_key(), self.cursors_key());
        let digest = hex_string(&Sha256::digest(name.as_bytes()));
        self.run(|mut conn| async move {
            let mut call = script.prepare_invoke();
            call.key(&log).key(&cursors).arg(&digest);
            for arg in args {
                call.arg(arg);
            }
            call.invoke_async(&mut conn).await
        })
        .await
    }
}

impl EventLog for RedisStore {
    fn cursor<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<u64, StoreError>> {
        async move {
            let id: String = self.on_cursor(&CURSOR, name, &[]).await?;
            position_of(&id)
        }
        .boxed()
    }

    fn read_after(
        &self,
        position: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Logged>, StoreError>> {
        async move {
            if limit == 0 {
                return Ok(Vec::new());
            }
            let log = self.log_key();
            let from = stream_id(position);
            let reply: Vec<String> = self
                .run(|mut conn| async move {
                    READ_AFTER
                        .key(&log)
                        .arg(&from)
                        .arg(limit)
                        .invoke_async(&mut conn)
                        .await
                })
                .await?;
            entries(&reply)
        }
        .boxed()
    }

    fn claim<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Option<u64>, StoreError>> {
        async move {
            let args = [holder.to_owned(), lease_arg(lease).to_string()];
            let id: Option<String> = self.on_cursor(&CLAIM, name, &args).await?;
            id.as_deref().map(position_of).transpose()
        }
        .boxed()
    }

    fn advance<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        position: u64,
        lease: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        async move {
            let args = [
                holder.to_owned(),
                stream_id(position),
                lease_arg(lease).to_string(),
            ];
            let moved: i64 = self.on_cursor(&ADVANCE, name, &args).await?;
            Ok(moved == 1)
        }
        .boxed()
    }

    fn release<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        async move {
            let _: i64 = self.on_cursor(&RELEASE, name, &[holder.to_owned()]).await?;
            Ok(())
        }
        .boxed()
    }

    fn unacknowledged<'a>(
        &'a self,
        name: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Logged>, StoreError>> {
        async move {
            if limit == 0 {
                return Ok(Vec::new());
            }
            let reply: Vec<String> = self
                .on_cursor(&UNACKNOWLEDGED, name, &[limit.to_string()])
                .await?;
            entries(&reply)
        }
        .boxed()
    }

    fn acknowledge<'a>(
        &'a self,
        name: &'a str,
        acknowledged: &'a [(u64, u128)],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        async move {
            let args: Vec<String> = acknowledged
                .iter()
                .flat_map(|&(position, id)| [stream_id(position), format!("{id:032x}")])
                .collect();
            let _: i64 = self.on_cursor(&ACKNOWLEDGE, name, &args).await?;
            Ok(())
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_stream_ids_map_one_to_one_in_order() {
        for (id, position) in [
            ("0-0", 0),
            ("0-1", 1),
            ("1-0", 1 << 20),
            ("1733250000000-1048575", 1_733_250_000_000 << 20 | 1_048_575),
        ] {
            assert_eq!(position_of(id).unwrap(), position, "{id}");
            assert_eq!(stream_id(position), id);
        }
        assert!(position_of("1-0").unwrap() > position_of("0-1048575").unwrap());
        for bad in [
            "",
            "1",
            "1-",
            "-1",
            "1-1048576",
            "17592186044416-0",
            "a-1",
            "1-0-0",
        ] {
            assert!(position_of(bad).is_err(), "{bad:?}");
        }
    }
}

//! The Lua scripts of the Redis store: each one atomic step of the
//! [`Backend`](crate::store::backend::Backend) primitives.
//!
//! Scripts that must decide inside their step (is the token active, is it the client's)
//! apply the rules of [`GrantState::is_live`](crate::store::backend::GrantState::is_live)
//! and [`TokenRule::scope_for`](crate::store::backend::TokenRule::scope_for), the latter
//! passed in as arguments; reads return raw state for the store's rules to judge.

use std::sync::LazyLock;

use redis::Script;

/// Lua shared by the scripts: the time in µs (Redis's clock, the same for every node),
/// whether a bulk revocation covers a grant, and appending a change to the log.
const LUA_COMMON: &str = r"
local function now_us()
  local tm = redis.call('TIME')
  return tonumber(tm[1]) * 1000000 + tonumber(tm[2])
end
local function cut(tag, client, owner, created)
  created = tonumber(created) or 0
  if client then
    local t = tonumber(redis.call('GET', tag .. 'cc:' .. redis.sha1hex(client)) or '-1')
    if created <= t then return true end
  end
  if owner then
    local t = tonumber(redis.call('GET', tag .. 'cs:' .. redis.sha1hex(owner)) or '-1')
    if created <= t then return true end
  end
  return false
end
-- A grant's subject and client cut-offs, as strings ('' for none).
local function cuts(tag, client, owner)
  local cs, cc = false, false
  if owner then cs = redis.call('GET', tag .. 'cs:' .. redis.sha1hex(owner)) end
  if client then cc = redis.call('GET', tag .. 'cc:' .. redis.sha1hex(client)) end
  return cs or '', cc or ''
end
-- Appends the facts of a change to the store's log, a stream that keeps a day of entries
-- (trimmed by entry id, which is a time) and expires a day after its last entry, as do
-- the delivery cursors. The entry's id is Redis's own unless the last entry's millisecond
-- is not past (the clock went back, or many changes in one millisecond): then the next
-- sequence number in it, or the next millisecond once its sequence numbers reach 2^20, so
-- that every id is one 64-bit position (RedisStore's EventLog). Its field `i` is its
-- stable 128-bit id: drawn from ARGV[#ARGV - 1], 128 random bits per script run.
local published = 0
local function publish(tag, ev)
  local us = now_us()
  ev.at = string.format('%.0f', us)
  ev.n = ARGV[#ARGV]
  local log = tag .. 'log'
  local ms = math.floor(us / 1000)
  local oldest = string.format('%.0f', ms - 86400000)
  local id = '*'
  local last = redis.call('XREVRANGE', log, '+', '-', 'COUNT', 1)[1]
  if last then
    local lms, lseq = string.match(last[1], '^(%d+)-(%d+)$')
    lms, lseq = tonumber(lms), tonumber(lseq)
    if lms >= ms then
      if lseq + 1 < 1048576 then
        id = string.format('%.0f-%.0f', lms, lseq + 1)
      else
        id = string.format('%.0f-0', lms + 1)
      end
    end
  end
  published = published + 1
  local i = string.sub(redis.sha1hex(ARGV[#ARGV - 1] .. ':' .. published), 1, 32)
  redis.call('XADD', log, 'MINID', '~', oldest, id, 'e', cjson.encode(ev), 'i', i)
  redis.call('PEXPIRE', log, 86400000)
  redis.call('PEXPIRE', tag .. 'cursors', 86400000)
end
";

/// A script with the shared Lua ahead of `body`.
pub(super) fn script(body: &str) -> Script {
    Script::new(&format!("{LUA_COMMON}\n{body}"))
}

/// KEYS: token, grant, [owner index]. ARGV: now, expiry, kind, grant id, client, issued at,
/// key tag, binding (`<cnf member>:<thumbprint in base64url>`, or empty for none), [owner].
/// Returns 0 if the grant is revoked, 1 once registered.
pub(super) static ISSUE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local now, exp = tonumber(ARGV[1]), tonumber(ARGV[2])
local g = redis.call('HMGET', KEYS[2], 'r', 'e', 'o', 'c', 'ct')
if g[1] == '1' then return 0 end
if exp <= now then return 1 end
local ge, owner, client = tonumber(g[2]), g[3], g[4]
if ge ~= nil and ge > now and cut(ARGV[7], g[4], g[3], g[5]) then return 0 end
local grown = false
if ge == nil or ge <= now then
  redis.call('DEL', KEYS[2])
  local ct = string.format('%.0f', now_us())
  if #KEYS == 3 then
    redis.call('HSET', KEYS[2], 'c', ARGV[5], 'e', exp, 'o', ARGV[9], 'ct', ct)
    owner = ARGV[9]
  else
    redis.call('HSET', KEYS[2], 'c', ARGV[5], 'e', exp, 'ct', ct)
    owner = false
  end
  ge, client, grown = exp, ARGV[5], true
elseif exp > ge then
  redis.call('HSET', KEYS[2], 'e', exp)
  ge, grown = exp, true
end
-- The client's index is scored by the grant's latest expiry, as the owner's: a client's
-- cut-off lives as long as the longest-lived grant it covers.
if grown and client then
  local ci = ARGV[7] .. 'ci:' .. redis.sha1hex(client)
  redis.call('ZADD', ci, ge, ARGV[4])
  redis.call('ZREMRANGEBYSCORE', ci, '-inf', now)
  local last = redis.call('ZRANGE', ci, -1, -1, 'WITHSCORES')
  redis.call('EXPIREAT', ci, last[2])
end
redis.call('EXPIREAT', KEYS[2], ge)
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'k', ARGV[3], 'g', ARGV[4], 'e', exp, 'i', ARGV[6])
if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'b', ARGV[8]) end
redis.call('EXPIREAT', KEYS[1], exp)
if #KEYS == 3 and owner == ARGV[9] then
  redis.call('ZADD', KEYS[3], ge, ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  local last = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
  redis.call('EXPIREAT', KEYS[3], last[2])
end
return 1
",
    )
});

/// KEYS: token. ARGV: key tag. Returns false when the token or its grant is not held, or
/// {kind, grant, expiry, issued at, binding or '', client, owner or '', revoked `1`/`0`,
/// grant expiry, created, subject cut-off or '', client cut-off or ''}.
pub(super) static LOOKUP: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local t = redis.call('HMGET', KEYS[1], 'k', 'g', 'e', 'i', 'b')
if not t[1] then return false end
local g = redis.call('HMGET', ARGV[1] .. 'g:' .. t[2], 'c', 'r', 'e', 'o', 'ct')
if not g[1] then return false end
local cs, cc = cuts(ARGV[1], g[1], g[4])
return {t[1], t[2], t[3], t[4] or '0', t[5] or '', g[1], g[4] or '', g[2] or '0', g[3] or '0',
  g[5] or '0', cs, cc}
",
    )
});

/// KEYS: token. ARGV: now, key tag, client, scope of an access token (`t`/`g`), scope of a
/// refresh token, tombstone TTL, token hash (hex), jti (or empty), entry id seed, node. Returns {`0`} not
/// active, {`3`} another client's, or {`1` token / `2` grant, kind, grant, client, owner or
/// '', expiry of what was revoked}.
pub(super) static REVOKE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local now = tonumber(ARGV[1])
local t = redis.call('HMGET', KEYS[1], 'k', 'g', 'e')
if not t[1] or tonumber(t[3]) <= now then return {'0'} end
local gk = ARGV[2] .. 'g:' .. t[2]
local g = redis.call('HMGET', gk, 'c', 'r', 'e', 'o', 'ct')
if not g[1] or g[2] == '1' or (tonumber(g[3]) or 0) <= now or cut(ARGV[2], g[1], g[4], g[5]) then
  return {'0'}
end
if g[1] ~= ARGV[3] then return {'3'} end
local scope = ARGV[4]
if t[1] == 'r' then scope = ARGV[5] end
local ev = {g = t[2], c = g[1], o = g[4] or '', j = ARGV[8], b = 'c:' .. ARGV[3]}
if scope == 'g' then
  redis.call('HSET', gk, 'r', '1')
  redis.call('EXPIREAT', gk, math.max(tonumber(g[3]) or 0, now + tonumber(ARGV[6])))
  ev.k, ev.x = 'g', g[3]
  publish(ARGV[2], ev)
  return {'2', t[1], t[2], g[1], g[4] or '', g[3]}
end
redis.call('DEL', KEYS[1])
ev.k, ev.t, ev.tk, ev.x = 't', ARGV[7], t[1], t[3]
publish(ARGV[2], ev)
return {'1', t[1], t[2], g[1], g[4] or '', t[3]}
",
    )
});

/// KEYS: grant. ARGV: now, tombstone TTL, key tag, grant id, entry id seed, node. Returns {`1`, client,
/// owner or '', expiry} when the grant was live, {`0`} otherwise.
pub(super) static REVOKE_GRANT: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local now = tonumber(ARGV[1])
local g = redis.call('HMGET', KEYS[1], 'e', 'r', 'c', 'o', 'ct')
local e = tonumber(g[1]) or 0
redis.call('HSET', KEYS[1], 'r', '1')
redis.call('EXPIREAT', KEYS[1], math.max(e, now + tonumber(ARGV[2])))
if g[3] and g[2] ~= '1' and e > now and not cut(ARGV[3], g[3], g[4], g[5]) then
  publish(ARGV[3], {k = 'g', g = ARGV[4], c = g[3], o = g[4] or '', b = 's', x = g[1]})
  return {'1', g[3], g[4] or '', g[1]}
end
return {'0'}
",
    )
});

/// KEYS: owner index. ARGV: now, key tag, client, tombstone TTL, owner, initiator, entry id
/// seed, node.
/// Returns {grant, expiry, grant, expiry, ...} for each live grant it revoked.
pub(super) static REVOKE_CLIENT_FOR_OWNER: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local now = tonumber(ARGV[1])
local revoked = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')) do
  local gk = ARGV[2] .. 'g:' .. id
  local g = redis.call('HMGET', gk, 'c', 'r', 'e', 'o', 'ct')
  if g[1] == ARGV[3] and g[2] ~= '1' then
    local e = tonumber(g[3]) or 0
    redis.call('HSET', gk, 'r', '1')
    redis.call('EXPIREAT', gk, math.max(e, now + tonumber(ARGV[4])))
    if e > now and not cut(ARGV[2], g[1], g[4], g[5]) then
      table.insert(revoked, id)
      table.insert(revoked, g[3])
      publish(ARGV[2], {k = 'g', g = id, c = g[1], o = ARGV[5], b = ARGV[6], x = g[3]})
    end
  end
end
return revoked
",
    )
});

/// KEYS: owner index (for a subject; any key for a client). ARGV: now, key tag, `s` or `c`,
/// name, initiator, tombstone TTL, entry id seed, node. Writes the cut-off, then counts the grants of the index
/// announces it when its look finds a live grant. Returns {cut-off, previous
/// cut-off (`-1` for none), `1` if announced}.
pub(super) static REVOKE_BULK: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local now, tag, subject = tonumber(ARGV[1]), ARGV[2], ARGV[3] == 's'
local us = now_us()
local ck = tag .. (subject and 'cs:' or 'cc:') .. redis.sha1hex(ARGV[4])
local previous = tonumber(redis.call('GET', ck) or '-1')
local index = subject and KEYS[1] or (tag .. 'ci:' .. redis.sha1hex(ARGV[4]))
-- The cut-off lives as long as the longest-lived grant it covers.
local ttl = tonumber(ARGV[6])
local last = redis.call('ZRANGE', index, -1, -1, 'WITHSCORES')
if last[2] then ttl = math.max(ttl, tonumber(last[2]) - now + 1) end
-- Whether it revokes anything: the first live grant found ends the look (at most 256).
local live = false
local ids = redis.call('ZRANGEBYSCORE', index, '(' .. now, '+inf', 'LIMIT', 0, 256)
for _, id in ipairs(ids) do
  local g = redis.call('HMGET', tag .. 'g:' .. id, 'c', 'r', 'e', 'o', 'ct')
  local ct = tonumber(g[5]) or 0
  if g[1] and g[2] ~= '1' and (tonumber(g[3]) or 0) > now and ct > previous
     and not cut(tag, g[1], g[4], g[5]) then
    live = true
    break
  end
end
if #ids == 256 then live = true end
local cutoff = string.format('%.0f', us)
redis.call('SET', ck, cutoff, 'EX', ttl)
if live then
  local ev = {k = subject and 's' or 'c', b = ARGV[5]}
  if subject then ev.o = ARGV[4] else ev.c = ARGV[4] end
  publish(tag, ev)
end
return {cutoff, string.format('%.0f', previous), live and '1' or '0'}
",
    )
});

/// KEYS: the owner index (for a subject; any key for a client). ARGV: now, key tag, `s` or
/// `c`, name, offset, limit. One page of the index's unexpired grants, raw: returns
/// {scanned, then per grant: client, revoked `1`/`0`, expiry, created, subject cut-off or
/// '', client cut-off or ''}.
pub(super) static GRANTS: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local now, tag = tonumber(ARGV[1]), ARGV[2]
local index = KEYS[1]
if ARGV[3] == 'c' then index = tag .. 'ci:' .. redis.sha1hex(ARGV[4]) end
local ids = redis.call('ZRANGEBYSCORE', index, '(' .. now, '+inf', 'LIMIT', ARGV[5], ARGV[6])
local out = {tostring(#ids)}
for _, id in ipairs(ids) do
  local g = redis.call('HMGET', tag .. 'g:' .. id, 'c', 'r', 'e', 'o', 'ct')
  if g[1] then
    local cs, cc = cuts(tag, g[1], g[4])
    for _, v in ipairs({g[1], g[2] or '0', g[3] or '0', g[5] or '0', cs, cc}) do
      table.insert(out, v)
    end
  end
end
return out
",
    )
});

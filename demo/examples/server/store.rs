//! The token store: memory by default, Redis with `--redis`, PostgreSQL with `--postgres`.

use tower_oauth_revoke::events::{Events, Initiator, RevocationEvent};
use tower_oauth_revoke::store::{
    backend::GrantState, GrantId, IssueError, MemoryStore, OwnerGrants, ReplayCache,
    RevocationOutcome, RevocationRequest, StoreError, TokenHash, TokenRecord, TokenStore,
};

#[derive(Clone)]
pub(crate) enum DemoStore {
    Memory(MemoryStore),
    Redis(tower_oauth_revoke::store::RedisStore),
    Postgres(tower_oauth_revoke::store::PostgresStore),
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            DemoStore::Memory($s) => $e.await,
            DemoStore::Redis($s) => $e.await,
            DemoStore::Postgres($s) => $e.await,
        }
    };
}

impl ReplayCache for DemoStore {
    async fn first_use(
        &self,
        scope: &str,
        id: &str,
        until: std::time::SystemTime,
    ) -> Result<bool, StoreError> {
        delegate!(self, s => s.first_use(scope, id, until))
    }
}

impl TokenStore for DemoStore {
    fn events(&self) -> &Events {
        match self {
            DemoStore::Memory(s) => s.events(),
            DemoStore::Redis(s) => s.events(),
            DemoStore::Postgres(s) => s.events(),
        }
    }
    async fn issue(&self, token: TokenHash, record: TokenRecord) -> Result<(), IssueError> {
        delegate!(self, s => s.issue(token, record))
    }
    async fn inspect(&self, token: &TokenHash) -> Result<Option<TokenRecord>, StoreError> {
        delegate!(self, s => s.inspect(token))
    }
    async fn revoke(
        &self,
        token: &TokenHash,
        request: RevocationRequest<'_>,
    ) -> Result<RevocationOutcome, StoreError> {
        delegate!(self, s => s.revoke(token, request))
    }
    async fn revoke_grant(&self, grant: GrantId) -> Result<(), StoreError> {
        delegate!(self, s => s.revoke_grant(grant))
    }
    async fn revoke_client_for_owner(
        &self,
        owner: &str,
        client_id: &str,
        by: Initiator,
    ) -> Result<usize, StoreError> {
        delegate!(self, s => s.revoke_client_for_owner(owner, client_id, by))
    }
    async fn revoke_subject(&self, subject: &str, by: Initiator) -> Result<usize, StoreError> {
        delegate!(self, s => s.revoke_subject(subject, by))
    }
    async fn revoke_client(&self, client_id: &str, by: Initiator) -> Result<usize, StoreError> {
        delegate!(self, s => s.revoke_client(client_id, by))
    }
    async fn clients_of_owner(&self, owner: &str) -> Result<Vec<OwnerGrants>, StoreError> {
        delegate!(self, s => s.clients_of_owner(owner))
    }
    async fn history(&self) -> Result<Vec<RevocationEvent>, StoreError> {
        delegate!(self, s => s.history())
    }
    async fn grant_state(&self, token: &TokenHash) -> Result<Option<GrantState>, StoreError> {
        delegate!(self, s => s.grant_state(token))
    }
}

pub(crate) async fn open_store(
    redis: Option<(&str, &str)>,
    postgres: Option<&str>,
) -> Result<DemoStore, String> {
    match (redis, postgres) {
        (Some((_, prefix)), _) if prefix.is_empty() || prefix.contains(['{', '}']) => {
            Err("--redis-key-prefix must be non-empty and free of braces".to_owned())
        }
        (Some((url, prefix)), _) => tower_oauth_revoke::store::RedisStore::builder()
            .key_prefix(prefix)
            .connect(url)
            .await
            .map(DemoStore::Redis)
            .map_err(|e| format!("cannot use Redis at {url}: {e}")),
        // The schema is migrated as the store connects.
        (None, Some(url)) => tower_oauth_revoke::store::PostgresStore::connect(url)
            .await
            .map(DemoStore::Postgres)
            .map_err(|e| format!("cannot use PostgreSQL at {url}: {e}")),
        (None, None) => Ok(DemoStore::Memory(MemoryStore::new())),
    }
}

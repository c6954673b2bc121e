//! The primitives of the PostgreSQL store: one function call each.

use std::{sync::Arc, time::SystemTime};

use tokio_postgres::Row;

use crate::{
    events::{Events, Initiator, RevocationEvent},
    store::{
        backend::{
            Applied, Backend, Bulk, CutOff, Facts, GrantPage, GrantState, GrantTarget, Held,
            TokenRule,
        },
        rules::initiator_code,
        Confirmation, GrantId, RevocationScope, StoreError, TokenHash, TokenKind, TokenRecord,
    },
};

use super::{malformed, PostgresStore};

/// How many grants a page of [`Backend::grants`] holds.
const PAGE: i32 = 1000;

// Tombstones are sent as µs (`bigint`), made an interval in the call.
const ISSUE: &str = "SELECT tor_issue($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
const LOOKUP: &str = "SELECT kind, grant_id, expires_at, issued_at, client_id, owner, revoked, \
    grant_expires_at, created_us, subject_cutoff_us, client_cutoff_us, cnf_member, cnf \
    FROM tor_lookup($1)";
const REVOKE: &str = "SELECT outcome, kind, grant_id, client_id, owner, expires_at \
    FROM tor_revoke($1, $2, $3, $4, $5, $6::bigint * interval '1 microsecond', $7, $8)";
const REVOKE_GRANT: &str = "SELECT grant_id, client_id, owner, expires_at \
    FROM tor_revoke_grant($1, $2::bigint * interval '1 microsecond', $3, $4, $5)";
const REVOKE_CLIENT_FOR_OWNER: &str = "SELECT grant_id, client_id, owner, expires_at \
    FROM tor_revoke_client_for_owner($1, $2, $3, $4::bigint * interval '1 microsecond', $5, $6)";
const CUT_OFF: &str = "SELECT cutoff_us, previous_us, announced \
    FROM tor_cut_off($1, $2, $3, $4::bigint * interval '1 microsecond', $5, $6)";
const GRANTS: &str = "SELECT grant_id, client_id, revoked, expires_at, created_us, \
    subject_cutoff_us, client_cutoff_us FROM tor_grants($1, $2, $3, $4, $5)";

pub(super) fn kind_code(kind: TokenKind) -> &'static str {
    match kind {
        TokenKind::AccessToken => "a",
        TokenKind::RefreshToken => "r",
    }
}

pub(super) fn kind_of(code: &str) -> Result<TokenKind, StoreError> {
    match code {
        "a" => Ok(TokenKind::AccessToken),
        "r" => Ok(TokenKind::RefreshToken),
        _ => Err(malformed("token kind")),
    }
}

/// A token's binding as its row holds it: the `cnf` member and the thumbprint.
fn binding_args(confirmation: Option<&Confirmation>) -> (Option<&'static str>, Option<&[u8]>) {
    match confirmation {
        Some(c) => (Some(c.member()), Some(c.thumbprint().as_slice())),
        None => (None, None),
    }
}

fn binding_of(row: &Row) -> Result<Option<Confirmation>, StoreError> {
    let member: Option<&str> = try_get(row, "cnf_member")?;
    let thumbprint: Option<&[u8]> = try_get(row, "cnf")?;
    let Some((member, thumbprint)) = member.zip(thumbprint) else {
        return Ok(None);
    };
    let thumbprint = <[u8; 32]>::try_from(thumbprint).map_err(|_| malformed("token binding"))?;
    match member {
        "jkt" => Ok(Some(Confirmation::Jkt(thumbprint))),
        "x5t#S256" => Ok(Some(Confirmation::X5tS256(thumbprint))),
        _ => Err(malformed("token binding")),
    }
}

/// A grant id's 64 bits as the `bigint` of the same bits, and back.
pub(super) fn grant_arg(grant: GrantId) -> i64 {
    grant.as_u64() as i64
}

pub(super) fn grant_of(id: i64) -> GrantId {
    GrantId::from_u64(id as u64)
}

fn scope_code(scope: Bulk<'_>) -> &'static str {
    match scope {
        Bulk::Subject(_) => "subject",
        Bulk::Client(_) => "client",
    }
}

fn micros(value: Option<i64>) -> Option<u64> {
    value.and_then(|v| u64::try_from(v).ok())
}

fn try_get<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a Row,
    column: &str,
) -> Result<T, StoreError> {
    row.try_get(column).map_err(StoreError::new)
}

/// The facts of a grant revoked, from a row of (grant_id, client_id, owner, expires_at).
fn grant_facts(row: &Row) -> Result<Facts, StoreError> {
    Ok(Facts {
        scope: RevocationScope::Grant,
        grant: grant_of(try_get(row, "grant_id")?),
        client_id: try_get::<Option<&str>>(row, "client_id")?.map(Arc::from),
        owner: try_get::<Option<&str>>(row, "owner")?.map(Arc::from),
        expires_at: try_get(row, "expires_at")?,
    })
}

impl Backend for PostgresStore {
    fn events(&self) -> &Events {
        &self.events
    }

    async fn register(&self, token: TokenHash, record: TokenRecord) -> Result<bool, StoreError> {
        let (cnf_member, cnf) = binding_args(record.confirmation.as_ref());
        let rows = self
            .query(
                ISSUE,
                &[
                    &token.as_bytes().as_slice(),
                    &kind_code(record.kind),
                    &grant_arg(record.grant),
                    &&*record.client_id,
                    &record.owner.as_deref(),
                    &record.expires_at,
                    &record.issued_at,
                    &self.now_arg(),
                    &cnf_member,
                    &cnf,
                ],
            )
            .await?;
        let row = rows.first().ok_or_else(|| malformed("registration"))?;
        match row.try_get::<_, &str>(0).map_err(StoreError::new)? {
            "ok" => Ok(true),
            "grant revoked" => Ok(false),
            _ => Err(malformed("registration")),
        }
    }

    async fn lookup(&self, token: &TokenHash) -> Result<Option<Held>, StoreError> {
        let rows = self.query(LOOKUP, &[&token.as_bytes().as_slice()]).await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        Ok(Some(Held {
            record: TokenRecord {
                kind: kind_of(try_get(row, "kind")?)?,
                client_id: try_get::<&str>(row, "client_id")?.into(),
                grant: grant_of(try_get(row, "grant_id")?),
                owner: try_get::<Option<&str>>(row, "owner")?.map(Arc::from),
                expires_at: try_get(row, "expires_at")?,
                issued_at: try_get(row, "issued_at")?,
                confirmation: binding_of(row)?,
            },
            grant: GrantState {
                revoked: try_get(row, "revoked")?,
                expires_at: try_get(row, "grant_expires_at")?,
                created_us: micros(try_get(row, "created_us")?).unwrap_or(0),
                subject_cut_off: micros(try_get(row, "subject_cutoff_us")?),
                client_cut_off: micros(try_get(row, "client_cutoff_us")?),
            },
        }))
    }

    async fn revoke_token(
        &self,
        token: &TokenHash,
        rule: TokenRule<'_>,
    ) -> Result<Applied, StoreError> {
        let grant_scope = |kind| rule.scope_for(kind) == RevocationScope::Grant;
        let rows = self
            .query(
                REVOKE,
                &[
                    &token.as_bytes().as_slice(),
                    &rule.client_id,
                    &grant_scope(TokenKind::AccessToken),
                    &grant_scope(TokenKind::RefreshToken),
                    &rule.jti,
                    &self.config.tombstone_us,
                    &self.config.node,
                    &rule.now,
                ],
            )
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| malformed("revocation outcome"))?;
        let scope = match try_get::<&str>(row, "outcome")? {
            "not active" => return Ok(Applied::NotActive),
            "another client" => return Ok(Applied::IssuedToAnotherClient),
            "token" => RevocationScope::Token,
            "grant" => RevocationScope::Grant,
            _ => return Err(malformed("revocation outcome")),
        };
        Ok(Applied::Revoked {
            kind: kind_of(try_get(row, "kind")?)?,
            facts: Facts {
                scope,
                ..grant_facts(row)?
            },
        })
    }

    async fn revoke_grants(
        &self,
        target: GrantTarget<'_>,
        by: &Initiator,
        now: SystemTime,
    ) -> Result<Vec<Facts>, StoreError> {
        let by = initiator_code(by);
        let config = &self.config;
        let rows = match target {
            GrantTarget::One(grant) => {
                self.query(
                    REVOKE_GRANT,
                    &[
                        &grant_arg(grant),
                        &config.tombstone_us,
                        &config.node,
                        &now,
                        &by,
                    ],
                )
                .await?
            }
            GrantTarget::OwnerClient { owner, client_id } => {
                self.query(
                    REVOKE_CLIENT_FOR_OWNER,
                    &[
                        &owner,
                        &client_id,
                        &by,
                        &config.tombstone_us,
                        &config.node,
                        &now,
                    ],
                )
                .await?
            }
        };
        rows.iter().map(grant_facts).collect()
    }

    async fn cut_off(&self, scope: Bulk<'_>, by: &Initiator) -> Result<Option<CutOff>, StoreError> {
        let rows = self
            .query(
                CUT_OFF,
                &[
                    &scope_code(scope),
                    &scope.name(),
                    &initiator_code(by),
                    &self.config.tombstone_us,
                    &self.config.node,
                    &self.now_arg(),
                ],
            )
            .await?;
        let row = rows.first().ok_or_else(|| malformed("cut-off"))?;
        Ok(Some(CutOff {
            at_us: micros(try_get(row, "cutoff_us")?).ok_or_else(|| malformed("cut-off"))?,
            previous_us: micros(try_get(row, "previous_us")?),
            announced: try_get(row, "announced")?,
        }))
    }

    async fn grants(&self, scope: Bulk<'_>, cursor: Option<u64>) -> Result<GrantPage, StoreError> {
        let after = cursor.map(|c| c as i64);
        let rows = self
            .query(
                GRANTS,
                &[
                    &scope_code(scope),
                    &scope.name(),
                    &after,
                    &PAGE,
                    &self.now_arg(),
                ],
            )
            .await?;
        let mut last = None;
        let grants = rows
            .iter()
            .map(|row| {
                let id: i64 = try_get(row, "grant_id")?;
                last = Some(id);
                let state = GrantState {
                    revoked: try_get(row, "revoked")?,
                    expires_at: try_get(row, "expires_at")?,
                    created_us: micros(try_get(row, "created_us")?).unwrap_or(0),
                    subject_cut_off: micros(try_get(row, "subject_cutoff_us")?),
                    client_cut_off: micros(try_get(row, "client_cutoff_us")?),
                };
                Ok((Arc::from(try_get::<&str>(row, "client_id")?), state))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let full = grants.len() == PAGE as usize;
        Ok(GrantPage {
            grants,
            next: last.filter(|_| full).map(|id| id as u64),
        })
    }

    /// The outbox from its first row, on one pooled connection.
    async fn history(&self) -> Result<Vec<RevocationEvent>, StoreError> {
        let timeout = self.config.operation_timeout;
        let client = tokio::time::timeout(timeout, self.pool.get())
            .await
            .map_err(|_| StoreError::new("PostgreSQL did not answer in time"))?
            .map_err(StoreError::new)?;
        super::relay::history(&client, self.now_arg(), timeout).await
    }
}

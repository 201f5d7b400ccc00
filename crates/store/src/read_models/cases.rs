//! Cases and their messages: the read model of case streams.
//!
//! Written only through [`catch_up`], which brings one case up to the event store inside the
//! caller's transaction (the ordering fence: version v is applied only after v−1). The
//! projector calls it for every case event it receives; writers of case events (routing, the
//! api, rules) call it right after appending, so their own change is readable when they
//! answer. `deskie replay` rebuilds the tables with [`truncate_all`] and
//! [`apply_case_event`]. See `docs/services/projector.md`.

mod projection;
mod runs;
mod views;

use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

pub use projection::{apply_case_event, attachments, catch_up, catch_up_with};
pub use runs::{project_folded, project_recorded};
pub use views::{CaseFilter, CaseView, CustomerView, DetailsView, FieldView, MessageView};

use crate::StoreError;
use views::CaseRow;

/// The largest page [`list`] returns.
pub const MAX_PAGE: i64 = 500;

const CASE_COLUMNS: &str = "id, version, integration_id, channel, status, group_id, assignee_id, panel,
    chatra_client_id, chatra_chat_id, chatra_group_id, customer_name, customer_email, customer_phone,
    customer_fields, customer_details, chat_ended, created_at, updated_at";

/// Cases matching `filter`, newest first (`created_at DESC, id DESC`), at most `filter.limit`;
/// the next page starts `before` the last one returned.
pub async fn list(pool: &PgPool, filter: &CaseFilter) -> Result<Vec<CaseView>, StoreError> {
    let mut query =
        QueryBuilder::<Postgres>::new(format!("SELECT {CASE_COLUMNS} FROM cases WHERE true"));
    if let Some(channel) = &filter.channel {
        query.push(" AND channel = ").push_bind(channel.clone());
    }
    if let Some(status) = &filter.status {
        query.push(" AND status = ").push_bind(status.clone());
    }
    if let Some(group_id) = filter.group_id {
        query.push(" AND group_id = ").push_bind(group_id);
    }
    if let Some(assignee_id) = filter.assignee_id {
        query.push(" AND assignee_id = ").push_bind(assignee_id);
    }
    if let Some((created_at, id)) = filter.before {
        query
            .push(" AND (created_at, id) < (")
            .push_bind(created_at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    query
        .push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .push_bind(filter.limit.clamp(1, MAX_PAGE));
    let rows: Vec<CaseRow> = query.build_query_as().fetch_all(pool).await?;
    Ok(rows.into_iter().map(CaseView::from).collect())
}

/// One case, `None` when there is no such case (yet).
pub async fn get(
    executor: impl sqlx::PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<CaseView>, StoreError> {
    let sql = format!("SELECT {CASE_COLUMNS} FROM cases WHERE id = $1");
    let row: Option<CaseRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(executor)
        .await?;
    Ok(row.map(CaseView::from))
}

/// One case with its messages, both as of one moment; `None` when there is no such case.
///
/// Read in one repeatable-read transaction: as two reads, a write committed between them
/// showed a row at version 11 (closed) with the message of version 14, written together with
/// the status change that reopened the case (seen in `cases_from_chats`).
pub async fn get_with_messages(
    pool: &sqlx::PgPool,
    id: Uuid,
) -> Result<Option<(CaseView, Vec<MessageView>)>, StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let Some(case) = get(&mut *tx, id).await? else {
        return Ok(None);
    };
    let messages = messages(&mut *tx, id).await?;
    tx.commit().await?;
    Ok(Some((case, messages)))
}

/// Every message of a case, in conversation order (`created_at`, then the version of the
/// event that added it).
pub async fn messages(
    executor: impl sqlx::PgExecutor<'_>,
    case_id: Uuid,
) -> Result<Vec<MessageView>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, author, agent_id, chatra_agent_id, chatra_message_id, text, source, created_at, delivery, attachments
           FROM case_messages WHERE case_id = $1 ORDER BY created_at, position",
    )
    .bind(case_id)
    .fetch_all(executor)
    .await?)
}

/// Empties the case read models, for a rebuild inside the caller's transaction.
pub async fn truncate_all(conn: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query("TRUNCATE cases, case_messages")
        .execute(conn)
        .await?;
    Ok(())
}

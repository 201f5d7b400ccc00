//! The deadline sweep: an `unknown` reply whose echo did not come in time becomes `failed`,
//! so the agent can resend it knowingly.

use std::sync::Arc;

use deskie_domain::case::DeliveryOutcome;
use deskie_store::outbox::{self, OverdueIntent};
use deskie_store::{Asking, StoreError};
use tokio_util::sync::CancellationToken;

use crate::deliver::{Deliverer, record_outcome};
use crate::intake::{CHATRA_REPLY, ReplyIntent};

/// Sweeps every poll interval until `shutdown`.
pub(crate) async fn run(deliverer: Arc<Deliverer>, shutdown: CancellationToken) {
    loop {
        match outbox::overdue_unknown(deliverer.store.pool(), CHATRA_REPLY, 100).await {
            Ok(overdue) => {
                for row in overdue {
                    if let Err(error) = settle(&deliverer, &row).await {
                        tracing::warn!(%error, key = %row.intent_key, "cannot settle an overdue reply yet");
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "cannot look for overdue replies"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(deliverer.config.poll_interval) => {}
        }
    }
}

/// Under the case's lock: `failed` unless the case shows the reply delivered by now.
async fn settle(deliverer: &Deliverer, row: &OverdueIntent) -> Result<(), StoreError> {
    let Ok(intent) = serde_json::from_value::<ReplyIntent>(row.payload.clone()) else {
        let mut conn = deliverer.store.pool().acquire().await?;
        outbox::resolve(
            &mut conn,
            &row.intent_key,
            false,
            Some("unreadable ledger row"),
        )
        .await?;
        return Ok(());
    };
    let mut case = deliverer.store.open_case(intent.case_id).await?;
    let delivered = case
        .state(&Asking::reply(&intent.message_id, None))
        .await?
        .reply(&intent.message_id)
        .is_some_and(|r| r.chatra_message_id.is_some());
    let reason = format!(
        "Chatra did not confirm this reply within {} s; it may not have reached the visitor",
        deliverer.config.unknown_deadline.as_secs()
    );
    if !outbox::resolve(case.connection(), &row.intent_key, delivered, Some(&reason)).await? {
        return Ok(());
    }
    if !delivered {
        let outcome = DeliveryOutcome::Failed { reason };
        record_outcome(&mut case, &intent, &row.intent_key, &outcome).await?;
    }
    case.commit().await?;
    deliverer
        .metrics
        .settled(if delivered { "echo" } else { "deadline" });
    tracing::info!(
        case_id = %intent.case_id,
        message_id = %intent.message_id,
        delivered,
        "overdue reply settled"
    );
    Ok(())
}

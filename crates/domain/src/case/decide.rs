//! From a Chatra webhook to case events (decide).

use deskie_proto::events::{
    AgentMessageMirrored, Attachment, CaseOpened, CaseResumed, CaseStatusChanged, ChatEnded,
    CustomerMessageReceived, Event, ReplyDelivered, SystemMessageReceived, UnmatchedEchoReceived,
};
use uuid::Uuid;

use super::customer::customer_change;
use super::ids::message_id_for;
use super::state::{CaseState, CaseStatus};
use crate::chatra::{ChatraEventKind, ChatraFile, ChatraMessage, ChatraWebhook, MessageAuthor};

/// What routing knows besides the webhook.
#[derive(Debug, Clone)]
pub struct RoutingContext<'a> {
    /// The case (see [`super::case_id_for`]).
    pub case_id: Uuid,
    /// The integration the webhook came through.
    pub integration_id: Uuid,
    /// Group for chats without a mapped Chatra group.
    pub default_group_id: Uuid,
    /// Chatra group id → Deskie group.
    pub group_mappings: &'a [(String, Uuid)],
    /// "separate" or "informational".
    pub panel: &'a str,
    /// Our `receivedFrom` tag: messages carrying it are echoes of our own replies.
    pub received_from: &'a str,
    /// Chatra agent id → the Deskie agent it is linked to in this integration (agent-sync's
    /// `AgentChatraLinked`); only the links of the webhook's agents are needed.
    pub agent_links: &'a [(String, Uuid)],
}

/// The events a webhook adds to a case, given the case so far. Pure and idempotent:
/// deciding the same webhook again on the resulting state returns nothing.
///
/// - The first webhook of a chat, whichever kind, opens the case in the mapped group.
/// - Customer data is merged (see `customer_change`).
/// - Each message Chatra id not yet in the case is added once: customer messages, agent
///   messages typed in Chatra, and echoes of our replies (our `receivedFrom`) — which settle
///   the reply they echo (`ReplyDelivered`) instead of being stored again. An echo that
///   matches no undelivered reply is recorded as `UnmatchedEchoReceived`, never as an agent
///   message: the case never shows one of our replies twice.
/// - A system message (`type: "system"` or a type we do not know) is kept as such: it never
///   resumes the case and names no agent, even when it carries an `agentId`.
/// - A customer message on a closed case, or after the chat ended, resumes the case.
/// - A transcript adds only what is missing, then records that the chat ended.
pub fn decide_webhook(
    state: &CaseState,
    webhook: &ChatraWebhook,
    ctx: &RoutingContext<'_>,
) -> Vec<Event> {
    let mut working = state.clone();
    let mut events = Vec::new();
    let mut emit = |event: Event, working: &mut CaseState| {
        working.apply(&event);
        events.push(event);
    };

    if !working.opened {
        let group_id = webhook
            .group_id
            .as_deref()
            .and_then(|chatra_group| ctx.group_mappings.iter().find(|(g, _)| g == chatra_group))
            .map_or(ctx.default_group_id, |(_, group)| *group);
        emit(
            Event::CaseOpened(CaseOpened {
                integration_id: ctx.integration_id.to_string(),
                channel: "live_chat".into(),
                chatra_client_id: webhook.client.id.clone(),
                chatra_chat_id: webhook.client.chat_id.clone(),
                chatra_group_id: webhook.group_id.clone(),
                group_id: group_id.to_string(),
                panel: ctx.panel.to_owned(),
            }),
            &mut working,
        );
    }

    if let Some(change) = customer_change(&working.customer, &webhook.client, "chatra") {
        emit(Event::CustomerDataChanged(change), &mut working);
    }

    let transcript = webhook.kind == ChatraEventKind::ChatTranscript;
    for message in &webhook.messages {
        if working.chatra_message_ids.contains(&message.id) {
            continue;
        }
        if message.received_from.as_deref() == Some(ctx.received_from) {
            let event = match matching_reply(&working, message) {
                Some((reply_id, agent_id)) => Event::ReplyDelivered(ReplyDelivered {
                    message_id: reply_id,
                    chatra_message_id: message.id.clone(),
                    chatra_agent_id: message.agent_id.clone(),
                    agent_id,
                    settled_by: "echo".into(),
                }),
                None => Event::UnmatchedEchoReceived(UnmatchedEchoReceived {
                    chatra_message_id: message.id.clone(),
                    text: message.text.clone(),
                    chatra_agent_id: message.agent_id.clone(),
                    created_at: message
                        .created_at_ms
                        .map(deskie_proto::timestamp_from_millis),
                    received_from: ctx.received_from.to_owned(),
                }),
            };
            emit(event, &mut working);
            continue;
        }
        let message_id = message_id_for(ctx.case_id, &message.id).to_string();
        let attachments = message.files.iter().map(attachment).collect();
        let created_at = message
            .created_at_ms
            .map(deskie_proto::timestamp_from_millis);
        let from_agent = match &message.author {
            MessageAuthor::Agent => true,
            MessageAuthor::Client => false,
            MessageAuthor::Untyped => message.agent_id.is_some(),
            MessageAuthor::System(chatra_type) => {
                emit(
                    Event::SystemMessageReceived(SystemMessageReceived {
                        message_id,
                        chatra_message_id: message.id.clone(),
                        text: message.text.clone(),
                        created_at,
                        attachments,
                        chatra_type: chatra_type.clone(),
                    }),
                    &mut working,
                );
                continue;
            }
        };
        if from_agent {
            let chatra_agent_id = message.agent_id.clone().unwrap_or_default();
            let agent_id = ctx
                .agent_links
                .iter()
                .find(|(chatra, _)| !chatra_agent_id.is_empty() && *chatra == chatra_agent_id)
                .map(|(_, agent)| agent.to_string());
            emit(
                Event::AgentMessageMirrored(AgentMessageMirrored {
                    message_id,
                    chatra_message_id: message.id.clone(),
                    chatra_agent_id,
                    agent_id,
                    agent_name: message.agent_name.clone(),
                    text: message.text.clone(),
                    created_at,
                    attachments,
                    agent_email: message.agent_email.clone(),
                }),
                &mut working,
            );
            continue;
        }
        if !transcript && (working.status == CaseStatus::Closed || working.chat_ended) {
            let previous = working.status;
            if previous == CaseStatus::Closed {
                emit(
                    Event::CaseStatusChanged(CaseStatusChanged {
                        from: previous.as_str().into(),
                        to: CaseStatus::Open.as_str().into(),
                        by_agent_id: None,
                        by_rule_id: None,
                    }),
                    &mut working,
                );
            }
            emit(
                Event::CaseResumed(CaseResumed {
                    message_id: message_id.clone(),
                    previous_status: previous.as_str().into(),
                }),
                &mut working,
            );
        }
        emit(
            Event::CustomerMessageReceived(CustomerMessageReceived {
                message_id,
                chatra_message_id: message.id.clone(),
                text: message.text.clone(),
                created_at,
                attachments,
            }),
            &mut working,
        );
    }

    if transcript && !working.chat_ended {
        emit(Event::ChatEnded(ChatEnded {}), &mut working);
    }
    events
}

/// The reply an echo settles (its id and agent): the oldest undelivered reply with the same
/// text — failed ones included, since the echo proves the message arrived after all.
fn matching_reply(state: &CaseState, echo: &ChatraMessage) -> Option<(String, Option<String>)> {
    state
        .undelivered_replies()
        .find(|(_, reply)| reply.text.trim() == echo.text.trim())
        .map(|(id, reply)| (id.to_owned(), reply.agent_id.clone()))
}

fn attachment(file: &ChatraFile) -> Attachment {
    Attachment {
        filename: file.filename.clone(),
        size: file.size,
        is_image: file.is_image,
        url: file.url.clone(),
        preview_url: file.preview_url.clone(),
        width: file.width,
        height: file.height,
        mime_type: file.mime_type.clone(),
        is_inline: file.is_inline,
        inline_id: file.inline_id.clone(),
    }
}

//! Templates: known placeholders only, missing values render empty, values are never
//! expanded again, and no text makes rendering panic.

use chrono::{TimeZone, Utc};
use deskie_domain::rules::*;
use proptest::prelude::*;
use uuid::Uuid;

const CASE: Uuid = Uuid::from_u128(0x0190_a3c4_0000_7000_8000_0000_0000_00ab);

fn ctx(name: Option<&str>, message: Option<&str>, agent: Option<&str>) -> RuleContext {
    let now = Utc.timestamp_opt(0, 0).single().expect("the epoch");
    let mut ctx = RuleContext::new(CaseChange::Updated(UpdateKind::CustomerMessage), CASE, now);
    ctx.customer.name = name.map(str::to_owned);
    ctx.message_text = message.map(str::to_owned);
    ctx.agent_name = agent.map(str::to_owned);
    ctx.customer.email = Some("a@b.c".into());
    ctx
}

fn render(text: &str, ctx: &RuleContext) -> String {
    Template::parse(text)
        .expect("a valid template")
        .render(ctx, Escaping::Plain)
}

#[test]
fn every_placeholder_renders_and_missing_values_are_empty() {
    let full = ctx(Some("Ana"), Some("hello"), Some("Bob"));
    let text = "{{customer.name}}|{{customer.email}}|{{case.id}}|{{message.text}}|{{agent.name}}";
    assert_eq!(
        render(text, &full),
        "Ana|a@b.c|0190a3c4-0000-7000-8000-0000000000ab|hello|Bob"
    );
    assert_eq!(
        render(text, &ctx(None, None, None)),
        "|a@b.c|0190a3c4-0000-7000-8000-0000000000ab||"
    );
}

#[test]
fn spaces_inside_braces_and_stray_closing_braces_are_fine() {
    let ctx = ctx(Some("Ana"), None, None);
    assert_eq!(render("{{ customer.name }}}} {", &ctx), "Ana}} {");
    assert_eq!(
        Template::parse("{{}}"),
        Err(RuleProblem::UnknownPlaceholder(String::new()))
    );
}

#[test]
fn slack_escaping_touches_values_not_the_admins_text() {
    let ctx = ctx(Some("<@U123> & <!here>"), None, None);
    let template = Template::parse("<https://x.io|case> {{customer.name}}").expect("valid");
    assert_eq!(
        template.render(&ctx, Escaping::Slack),
        "<https://x.io|case> &lt;@U123&gt; &amp; &lt;!here&gt;"
    );
}

#[test]
fn placeholders_cut_to_64_characters_in_errors() {
    let long = format!("{{{{{}}}}}", "é".repeat(100));
    let Err(RuleProblem::UnknownPlaceholder(name)) = Template::parse(&long) else {
        panic!("refused");
    };
    assert_eq!(name.chars().count(), 64);
}

proptest! {
    #[test]
    fn any_text_is_refused_or_renders(text in any::<String>(), value in any::<String>()) {
        let ctx = ctx(Some(&value), Some(&value), Some(&value));
        if let Ok(template) = Template::parse(&text) {
            let _ = template.render(&ctx, Escaping::Plain);
            let _ = template.render(&ctx, Escaping::Slack);
        }
    }

    #[test]
    fn placeholder_like_text_is_refused_or_renders(
        text in r"(\{\{|\}\}|\{|\}| |customer\.name|case\.id|agent|[a-z.]{1,6}|é){0,12}",
    ) {
        if let Ok(template) = Template::parse(&text) {
            let _ = template.render(&ctx(Some("{{x}}"), None, None), Escaping::Slack);
        }
    }

    #[test]
    fn text_without_double_braces_renders_as_itself(text in "[^{]*") {
        prop_assert_eq!(render(&text, &ctx(Some("x"), None, None)), text);
    }

    #[test]
    fn values_are_inserted_once_and_never_expanded(
        name in r"(\{\{(customer\.name|case\.id|message\.text)\}\}|[a-z{} ]){0,8}",
        message in any::<String>(),
    ) {
        let ctx = ctx(Some(&name), Some(&message), None);
        let rendered = render("[{{customer.name}}][{{message.text}}]", &ctx);
        prop_assert_eq!(rendered, format!("[{name}][{message}]"));
    }
}

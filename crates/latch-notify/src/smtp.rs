//! Email delivery over SMTP (lettre on tokio, TLS by rustls): for approvers and requesters who
//! are not in a chat tool. One [`Mailer`] per server, built once from `[notify]`'s SMTP settings;
//! it keeps a small pool of connections to the relay.

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::{DELIVERY_TIMEOUT, DeliveryError};

/// Where and as whom latch sends mail.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    /// The relay, as lettre reads it: `smtp://host:587?tls=required` (STARTTLS),
    /// `smtps://host:465` (TLS from the first byte), or `smtp://host:25` (plain, for a relay on
    /// the same host or network).
    pub url: String,
    /// The sender, e.g. `latch <latch@example.com>`.
    pub from: String,
    /// Login at the relay, when it asks for one.
    pub username: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry credentials; the password always is one.
        f.debug_struct("SmtpSettings")
            .field("from", &self.from)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Sends rendered emails through one relay.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// A mailer for `settings`; connects on the first message, not here.
    pub fn new(settings: &SmtpSettings) -> Result<Self, DeliveryError> {
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(&settings.url)
            .map_err(|err| DeliveryError::Invalid(format!("SMTP relay URL: {err}")))?
            .timeout(Some(DELIVERY_TIMEOUT));
        if let (Some(user), Some(password)) = (&settings.username, &settings.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        let from = settings
            .from
            .parse::<Mailbox>()
            .map_err(|err| DeliveryError::Invalid(format!("sender `{}`: {err}", settings.from)))?;
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }

    /// Sends one plain-text message to every address of `to`.
    pub async fn send(
        &self,
        to: &[String],
        subject: &str,
        text: &str,
    ) -> Result<(), DeliveryError> {
        if to.is_empty() {
            return Err(DeliveryError::Invalid(
                "an email with no recipient".to_owned(),
            ));
        }
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .header(ContentType::TEXT_PLAIN);
        for address in to {
            let mailbox = address
                .parse::<Mailbox>()
                .map_err(|err| DeliveryError::Invalid(format!("recipient `{address}`: {err}")))?;
            builder = builder.to(mailbox);
        }
        let message = builder
            .body(text.to_owned())
            .map_err(|err| DeliveryError::Invalid(err.to_string()))?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|err| DeliveryError::Smtp {
                // A 5xx answer (unknown mailbox, refused sender) will not change by itself;
                // network trouble and 4xx answers may.
                permanent: err.is_permanent(),
                message: crate::deliver::error_chain(&err),
            })
    }
}

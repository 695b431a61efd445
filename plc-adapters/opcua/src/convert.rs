//! Conversions between OPC UA values and the domain's: variants, status codes, timestamps.
//!
//! Reads accept any numeric variant for a numeric tag (a server that reports
//! an Int32 where the map says f64 still reads); writes send exactly the
//! variant type of the tag's `data_type`, after checking the value against
//! the tag's limits and the type's range, before anything reaches the wire.

use crate::config::{OpcDataType, TagConfig};
use chrono::{DateTime, Utc};
use opcua::types::{StatusCode, SubStatusCode, Variant};
use remine_domain::ports::TagError;
use remine_domain::{BadReason, Quality, TagValue};
use remine_plc_common::{ErrorKind, write_bool, write_number};

/// A read variant as a domain value, if it is a scalar number or a bool.
pub(crate) fn tag_value(v: &Variant) -> Option<TagValue> {
    Some(match v {
        Variant::Boolean(b) => TagValue::Bool(*b),
        Variant::SByte(i) => TagValue::Int(i64::from(*i)),
        Variant::Byte(i) => TagValue::Int(i64::from(*i)),
        Variant::Int16(i) => TagValue::Int(i64::from(*i)),
        Variant::UInt16(i) => TagValue::Int(i64::from(*i)),
        Variant::Int32(i) => TagValue::Int(i64::from(*i)),
        Variant::UInt32(i) => TagValue::Int(i64::from(*i)),
        Variant::Int64(i) => TagValue::Int(*i),
        Variant::UInt64(i) => i64::try_from(*i).map_or(TagValue::Float(*i as f64), TagValue::Int),
        Variant::Float(f) => TagValue::Float(f64::from(*f)),
        Variant::Double(f) => TagValue::Float(*f),
        _ => return None,
    })
}

/// The name of a variant's type, for messages.
pub(crate) fn variant_kind(v: &Variant) -> String {
    match v.scalar_type_id() {
        Some(t) => format!("{t:?}"),
        None if matches!(v, Variant::Empty) => "no value".to_string(),
        None => "an array".to_string(),
    }
}

/// The read value of a tag: a bool tag reads bools, a numeric tag numbers.
pub(crate) fn read_value(tag: &TagConfig, v: &Variant) -> Result<TagValue, String> {
    let value = tag_value(v);
    match (tag.data_type(), value) {
        (OpcDataType::Bool, Some(b @ TagValue::Bool(_))) => Ok(b),
        (OpcDataType::Bool, _) => Err(format!(
            "{} is a bool, the server sent {}",
            tag.name(),
            variant_kind(v)
        )),
        (_, Some(TagValue::Bool(_)) | None) => Err(format!(
            "{} is a {}, the server sent {}",
            tag.name(),
            tag.data_type(),
            variant_kind(v)
        )),
        (OpcDataType::F64 | OpcDataType::F32, Some(n)) => Ok(TagValue::Float(n.as_f64())),
        (_, Some(n)) => Ok(n),
    }
}

/// The variant a write sends, or why the value is refused.
pub(crate) fn write_variant(tag: &TagConfig, value: TagValue) -> Result<Variant, TagError> {
    let name = tag.name().clone();
    let data_type = tag.data_type();
    if data_type == OpcDataType::Bool {
        return write_bool(&name, value).map(Variant::Boolean);
    }
    let x = write_number(&name, value, data_type)?;
    let (type_min, type_max) = match data_type {
        OpcDataType::F64 => (f64::MIN, f64::MAX),
        OpcDataType::F32 => (-f64::from(f32::MAX), f64::from(f32::MAX)),
        OpcDataType::I32 => (f64::from(i32::MIN), f64::from(i32::MAX)),
        OpcDataType::U16 => (0.0, f64::from(u16::MAX)),
        OpcDataType::U32 => (0.0, f64::from(u32::MAX)),
        OpcDataType::Bool => (0.0, 1.0),
    };
    let (min, max) = tag
        .limits()
        .map_or((type_min, type_max), |l| (l.min(), l.max()));
    if !x.is_finite() || x < min || x > max || x < type_min || x > type_max {
        return Err(TagError::OutOfLimits {
            tag: name,
            value: x,
            min,
            max,
        });
    }
    let integral = || {
        if x.fract() == 0.0 {
            Ok(x as i64)
        } else {
            Err(TagError::Failed {
                tag: tag.name().clone(),
                why: format!(
                    "{x} is not a whole number, and {} is a {data_type}",
                    tag.name()
                ),
            })
        }
    };
    Ok(match data_type {
        OpcDataType::F64 => Variant::Double(x),
        OpcDataType::F32 => Variant::Float(x as f32),
        OpcDataType::I32 => Variant::Int32(integral()? as i32),
        OpcDataType::U16 => Variant::UInt16(integral()? as u16),
        OpcDataType::U32 => Variant::UInt32(integral()? as u32),
        OpcDataType::Bool => Variant::Boolean(x != 0.0),
    })
}

/// A method argument: floats go as Double, integers as Int32 when they fit
/// (else Int64), bools as Boolean.
pub(crate) fn argument(value: TagValue) -> Variant {
    match value {
        TagValue::Float(f) => Variant::Double(f),
        TagValue::Int(i) => i32::try_from(i).map_or(Variant::Int64(i), Variant::Int32),
        TagValue::Bool(b) => Variant::Boolean(b),
    }
}

/// A status code as the domain's quality.
pub(crate) fn quality(status: StatusCode) -> Quality {
    if status.is_good() {
        return Quality::Good;
    }
    if status.is_uncertain() {
        return Quality::Uncertain(status.sub_code().to_string());
    }
    let name = status.sub_code().to_string();
    Quality::Bad(match status.sub_code() {
        SubStatusCode::BadNotConnected | SubStatusCode::BadServerNotConnected => {
            BadReason::NotConnected
        }
        SubStatusCode::BadTimeout => BadReason::Timeout,
        SubStatusCode::BadCommunicationError => BadReason::CommunicationError(name),
        SubStatusCode::BadConfigurationError
        | SubStatusCode::BadNodeIdUnknown
        | SubStatusCode::BadNodeIdInvalid
        | SubStatusCode::BadAttributeIdInvalid => BadReason::ConfigurationError(name),
        SubStatusCode::BadWaitingForInitialData => BadReason::WaitingForInitialData,
        _ => BadReason::DeviceFailure(name),
    })
}

/// How a server refused a connection; retrying soon will not fix either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// The user name, password or user token.
    Identity,
    /// Certificates or the security policy.
    Security,
}

/// Whether a connection failure is the server refusing us, and how.
pub(crate) fn rejection(status: StatusCode) -> Option<Rejection> {
    match status.sub_code() {
        SubStatusCode::BadUserAccessDenied
        | SubStatusCode::BadIdentityTokenInvalid
        | SubStatusCode::BadIdentityTokenRejected
        | SubStatusCode::BadUserSignatureInvalid => Some(Rejection::Identity),
        SubStatusCode::BadSecurityChecksFailed
        | SubStatusCode::BadSecurityPolicyRejected
        | SubStatusCode::BadSecurityModeRejected
        | SubStatusCode::BadCertificateInvalid
        | SubStatusCode::BadCertificateUntrusted
        | SubStatusCode::BadCertificateTimeInvalid
        | SubStatusCode::BadCertificateHostNameInvalid
        | SubStatusCode::BadCertificateUriInvalid
        | SubStatusCode::BadCertificateUseNotAllowed
        | SubStatusCode::BadCertificateRevoked
        | SubStatusCode::BadCertificateChainIncomplete
        | SubStatusCode::BadApplicationSignatureInvalid => Some(Rejection::Security),
        _ => None,
    }
}

/// How a failed service call counts in the link's stats.
pub(crate) fn error_kind(status: StatusCode) -> ErrorKind {
    match status.sub_code() {
        SubStatusCode::BadTimeout | SubStatusCode::BadRequestTimeout => ErrorKind::Timeout,
        SubStatusCode::BadDecodingError
        | SubStatusCode::BadEncodingError
        | SubStatusCode::BadEncodingLimitsExceeded
        | SubStatusCode::BadUnknownResponse => ErrorKind::Protocol,
        SubStatusCode::BadCommunicationError
        | SubStatusCode::BadConnectionClosed
        | SubStatusCode::BadConnectionRejected
        | SubStatusCode::BadNotConnected
        | SubStatusCode::BadDisconnect
        | SubStatusCode::BadServerNotConnected
        | SubStatusCode::BadSecureChannelClosed
        | SubStatusCode::BadSecureChannelIdInvalid
        | SubStatusCode::BadSessionClosed
        | SubStatusCode::BadSessionIdInvalid
        | SubStatusCode::BadTcpInternalError
        | SubStatusCode::BadTcpEndpointUrlInvalid
        | SubStatusCode::BadNoCommunication => ErrorKind::Transport,
        _ => ErrorKind::Exception,
    }
}

pub(crate) fn time(t: &opcua::types::DateTime) -> DateTime<Utc> {
    t.as_chrono()
}

//! Gemini's thought signatures, carried in the tool call ids OpenAI clients echo back.

const SIGNATURE_MARK: &str = "_sig_";

/// `call_<request id, alphanumerics only>-<n>`, plus `_sig_<signature>` when Gemini signed it.
/// The signature (standard base64) is written as unpadded base64url so the id keeps to
/// `[A-Za-z0-9_-]`.
pub fn tool_call_id(request_id: &str, n: usize, signature: Option<&str>) -> String {
    let mut id = String::from("call_");
    id.extend(request_id.chars().filter(char::is_ascii_alphanumeric));
    id.push('-');
    id.push_str(&n.to_string());
    if let Some(sig) = signature {
        id.push_str(SIGNATURE_MARK);
        id.extend(sig.chars().filter(|&c| c != '=').map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        }));
    }
    id
}

/// The signature a tool call id made by `tool_call_id` carries, back in standard base64.
pub fn signature_from_call_id(id: &str) -> Option<String> {
    let (unique, sig) = id.strip_prefix("call_")?.split_once(SIGNATURE_MARK)?;
    let (request, n) = unique.rsplit_once('-')?;
    let ours = request.chars().all(|c| c.is_ascii_alphanumeric())
        && !n.is_empty()
        && n.chars().all(|c| c.is_ascii_digit());
    if !ours
        || sig.is_empty()
        || !sig
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return None;
    }
    let mut out: String = sig
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    while !out.len().is_multiple_of(4) {
        out.push('=');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::test;

    struct Case {
        request_id: &'static str,
        n: usize,
        signature: Option<&'static str>,
        /// The tool call id, which names the case.
        id: &'static str,
    }

    #[test]
    fn tool_call_ids_carry_signatures_both_ways() {
        let cases = [
            Case {
                request_id: "req-1",
                n: 0,
                signature: Some("Zm9v+/8="),
                id: "call_req1-0_sig_Zm9v-_8",
            },
            Case {
                request_id: "",
                n: 3,
                signature: Some("AAAA"),
                id: "call_-3_sig_AAAA",
            },
            Case {
                request_id: "a1",
                n: 2,
                signature: None,
                id: "call_a1-2",
            },
        ];
        for case in cases {
            assert_eq!(
                tool_call_id(case.request_id, case.n, case.signature),
                case.id
            );
            assert_eq!(
                signature_from_call_id(case.id).as_deref(),
                case.signature,
                "{}",
                case.id
            );
        }
        for foreign in [
            "call_abc123",
            "toolu_01A_sig_x",
            "call_x_sig_y",
            "call_a-1_sig_",
            "call_a-1_sig_a+b",
        ] {
            assert_eq!(signature_from_call_id(foreign), None, "{foreign}");
        }
    }
}

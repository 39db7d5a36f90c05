//! Request parameters a provider cannot honour: one wording for every provider, and the
//! model's `drop_unsupported_params` choosing between a 400 that names the parameter and
//! leaving it out.

use crate::api::ApiError;
use crate::config::ModelSettings;

/// `Ok` when the model drops what its provider cannot honour (the caller then leaves `param`
/// out), else a 400 naming `param`. `why` completes "Unsupported parameter `x`: ", e.g.
/// "Gemini does not support it".
pub fn unsupported(settings: &ModelSettings, param: &str, why: &str) -> Result<(), ApiError> {
    if settings.drop_unsupported_params {
        return Ok(());
    }
    Err(ApiError::invalid_param(
        param,
        format!(
            "Unsupported parameter `{param}`: {why} (set drop_unsupported_params on the model to leave it out)."
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::test;

    struct Case {
        name: &'static str,
        drop_unsupported_params: bool,
        expected: Result<(), &'static str>,
    }

    #[test]
    fn refused_by_name_unless_the_model_drops_it() {
        let cases = [
            Case {
                name: "refused",
                drop_unsupported_params: false,
                expected: Err("Unsupported parameter `seed`: Gemini does not support it (set drop_unsupported_params on the model to leave it out)."),
            },
            Case {
                name: "dropped",
                drop_unsupported_params: true,
                expected: Ok(()),
            },
        ];
        for case in cases {
            let settings = ModelSettings {
                drop_unsupported_params: case.drop_unsupported_params,
                ..ModelSettings::default()
            };
            let got = unsupported(&settings, "seed", "Gemini does not support it");
            assert_eq!(
                got.as_ref().map_err(|e| e.message.as_str()),
                case.expected.as_ref().map_err(|m| *m),
                "{}",
                case.name
            );
            if let Err(e) = got {
                assert_eq!((e.status, e.param.as_deref()), (400, Some("seed")));
            }
        }
    }
}

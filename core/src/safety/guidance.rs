//! What the person is told at once when an answer or a measurement raised an urgent flag: calm,
//! concrete, in their language, with the numbers to call. The care team's clinical text is a
//! different text (rules.rs) and is never shown here.
//!
//! The numbers are county content (`safety.json` in the content folder, docs/safety.md) with
//! national defaults: 112 (emergency), Päivystysapu 116 117 (medical helpline, free, 24/7), and
//! MIELI ry's crisis line 09 2525 0111 (24/7 in Finnish; THL, "Tjänster i krissituationer").

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::rules::Advice;
use crate::error::{Error, ImportProblem, Result};
use crate::instrument::Lang;

/// The phone numbers the guidance gives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Numbers {
    pub emergency: String,
    pub medical_helpline: String,
    pub crisis_line: String,
}

impl Default for Numbers {
    fn default() -> Self {
        Numbers {
            emergency: "112".into(),
            medical_helpline: "116 117".into(),
            crisis_line: "09 2525 0111".into(),
        }
    }
}

impl Numbers {
    /// The county's numbers from `safety.json` in its content folder, else the defaults.
    pub fn from_content_dir(dir: Option<&Path>) -> Result<Numbers> {
        let Some(file) = dir.map(|d| d.join("safety.json")).filter(|f| f.is_file()) else {
            return Ok(Numbers::default());
        };
        let name = file.display().to_string();
        let problem = |field: &str, problem: String| {
            Error::Import(vec![ImportProblem {
                line: 0,
                message: format!("{name}: field `{field}`: {problem}"),
            }])
        };
        let text = std::fs::read_to_string(&file)?;
        let n: Numbers =
            serde_json::from_str(&text).map_err(|e| problem("safety.json", e.to_string()))?;
        for (field, v) in [
            ("emergency", &n.emergency),
            ("medical_helpline", &n.medical_helpline),
            ("crisis_line", &n.crisis_line),
        ] {
            let ok = (2..=20).contains(&v.chars().count())
                && v.chars()
                    .all(|c| c.is_ascii_digit() || c == ' ' || c == '+');
            if !ok {
                return Err(problem(
                    field,
                    format!("`{v}` is not a phone number (2–20 digits, spaces or +)"),
                ));
            }
        }
        Ok(n)
    }
}

/// The person's guidance for one kind of flag, in one language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Guidance {
    pub advice: Advice,
    pub title: String,
    /// What to do now, in order.
    pub steps: Vec<String>,
}

/// The guidance for `advice` in `lang`, with the county's numbers.
pub fn guidance(advice: Advice, lang: Lang, n: &Numbers) -> Guidance {
    let (e, h, c) = (&n.emergency, &n.medical_helpline, &n.crisis_line);
    let pick = |fi: String, sv: String, en: String| match lang {
        Lang::Fi => fi,
        Lang::Sv => sv,
        Lang::En => en,
    };
    let team_fi = "Hoitotiimisi näkee vastauksesi, kun sovellus seuraavan kerran synkronoi. Älä jää odottamaan heitä, jos olo on turvaton.";
    let team_sv = "Ditt vårdteam ser ditt svar när appen synkroniserar nästa gång. Vänta inte på dem om du känner dig otrygg.";
    let team_en = "Your care team will see this when the app next syncs. Do not wait for them if you feel unsafe.";
    let (title, steps): (String, Vec<String>) = match advice {
        Advice::SelfHarm => (
            pick(
                "Kiitos, että kerroit. Apua on saatavilla nyt.".into(),
                "Tack för att du berättade. Hjälp finns nu.".into(),
                "Thank you for telling us. Help is there now.".into(),
            ),
            vec![
                pick(
                    format!("Jos olet vaarassa vahingoittaa itseäsi nyt, soita {e}."),
                    format!("Om du riskerar att skada dig själv nu, ring {e}."),
                    format!("If you might harm yourself now, call {e}."),
                ),
                pick(
                    format!("Voit puhua jonkun kanssa heti: MIELI ry:n kriisipuhelin {c} (ympäri vuorokauden)."),
                    format!("Du kan prata med någon genast: MIELI rf:s kristelefon {c} (dygnet runt, på finska)."),
                    format!("You can talk to someone now: the MIELI crisis line {c} (day and night, in Finnish)."),
                ),
                pick(
                    "Kerro olostasi jollekin läheiselle ja pyydä häntä olemaan kanssasi.".into(),
                    "Berätta för någon närstående hur du mår och be hen att vara med dig.".into(),
                    "Tell someone close to you how you feel and ask them to stay with you.".into(),
                ),
                pick(team_fi.into(), team_sv.into(), team_en.into()),
            ],
        ),
        Advice::SevereDepression => (
            pick(
                "Vastauksesi kertovat, että sinulla on nyt hyvin raskasta.".into(),
                "Dina svar visar att du har det mycket tungt just nu.".into(),
                "Your answers show that things are very hard for you right now.".into(),
            ),
            vec![
                pick(
                    format!("Voit puhua jonkun kanssa heti: MIELI ry:n kriisipuhelin {c} (ympäri vuorokauden)."),
                    format!("Du kan prata med någon genast: MIELI rf:s kristelefon {c} (dygnet runt, på finska)."),
                    format!("You can talk to someone now: the MIELI crisis line {c} (day and night, in Finnish)."),
                ),
                pick(
                    format!("Jos sinulla on ajatuksia itsesi vahingoittamisesta, soita {e}."),
                    format!("Om du har tankar på att skada dig själv, ring {e}."),
                    format!("If you have thoughts of harming yourself, call {e}."),
                ),
                pick(team_fi.into(), team_sv.into(), team_en.into()),
            ],
        ),
        Advice::LowGlucose => (
            pick(
                "Verensokerisi on hyvin matala. Hoida se nyt.".into(),
                "Ditt blodsocker är mycket lågt. Behandla det nu.".into(),
                "Your blood glucose is very low. Treat it now.".into(),
            ),
            vec![
                pick(
                    "Syö tai juo heti 15–20 g nopeaa hiilihydraattia: esimerkiksi 4–8 sokeri- tai glukoosipalaa tai 2 dl mehua.".into(),
                    "Ät eller drick genast 15–20 g snabba kolhydrater: till exempel 4–8 sockerbitar eller druvsockertabletter eller 2 dl saft.".into(),
                    "Eat or drink 15–20 g of fast carbohydrate now: for example 4–8 sugar lumps or glucose tablets, or a glass (200 ml) of juice.".into(),
                ),
                pick(
                    "Mittaa uudelleen 15 minuutin kuluttua. Jos arvo on yhä alle 4 mmol/l, ota toinen annos.".into(),
                    "Mät igen efter 15 minuter. Om värdet fortfarande är under 4 mmol/l, ta en ny dos.".into(),
                    "Measure again after 15 minutes. If it is still below 4 mmol/L (70 mg/dL), take another dose.".into(),
                ),
                pick(
                    "Kun olo on parempi, syö välipala tai seuraava ateria.".into(),
                    "När du mår bättre, ät ett mellanmål eller nästa måltid.".into(),
                    "When you feel better, eat a snack or your next meal.".into(),
                ),
                pick(
                    format!("Jos olet sekava, et pysty nielemään tai et toivu 10–15 minuutissa, jonkun on soitettava {e}. Älä aja autoa."),
                    format!("Om du är förvirrad, inte kan svälja eller inte återhämtar dig på 10–15 minuter ska någon ringa {e}. Kör inte bil."),
                    format!("If you are confused, cannot swallow or do not recover in 10–15 minutes, someone must call {e}. Do not drive."),
                ),
            ],
        ),
        Advice::HighGlucose => (
            pick(
                "Verensokerisi on hyvin korkea.".into(),
                "Ditt blodsocker är mycket högt.".into(),
                "Your blood glucose is very high.".into(),
            ),
            vec![
                pick(
                    "Pese kädet ja mittaa uudelleen. Juo vettä.".into(),
                    "Tvätta händerna och mät igen. Drick vatten.".into(),
                    "Wash your hands and measure again. Drink water.".into(),
                ),
                pick(
                    format!("Jos arvo on yhä yli 20 mmol/l tai mittari näyttää HI, ota yhteyttä terveysasemalle tänään tai soita Päivystysapuun {h}."),
                    format!("Om värdet fortfarande är över 20 mmol/l eller mätaren visar HI, kontakta hälsostationen i dag eller ring Jourhjälpen {h}."),
                    format!("If it is still above 20 mmol/L (360 mg/dL) or the meter shows HI, contact your health centre today or call the medical helpline {h}."),
                ),
                pick(
                    format!("Jos oksennat, hengität tiheään tai olet tokkurainen tai sekava, soita {e}."),
                    format!("Om du kräks, andas snabbt eller är dåsig eller förvirrad, ring {e}."),
                    format!("If you are vomiting, breathing fast, drowsy or confused, call {e}."),
                ),
            ],
        ),
        Advice::HighBloodPressure => (
            pick(
                "Verenpaineesi on hyvin korkea.".into(),
                "Ditt blodtryck är mycket högt.".into(),
                "Your blood pressure is very high.".into(),
            ),
            vec![
                pick(
                    format!("Jos sinulla on rintakipua, hengenahdistusta, toispuolista heikkoutta tai puutumista, puhe- tai näköhäiriöitä tai äkillinen kova päänsärky, soita {e} nyt."),
                    format!("Om du har bröstsmärta, andnöd, svaghet eller domning i ena sidan, tal- eller synstörningar eller plötslig svår huvudvärk, ring {e} nu."),
                    format!("If you have chest pain, shortness of breath, weakness or numbness on one side, trouble speaking or seeing, or a sudden severe headache, call {e} now."),
                ),
                pick(
                    "Muuten istu rauhassa 5 minuuttia ja mittaa uudelleen.".into(),
                    "Annars sitt lugnt i 5 minuter och mät igen.".into(),
                    "Otherwise sit quietly for 5 minutes and measure again.".into(),
                ),
                pick(
                    format!("Jos lukema on yhä 180/110 tai yli, ota yhteyttä terveysasemalle tänään tai soita Päivystysapuun {h}. Jos se on toistuvasti 200/130 tai yli, hakeudu päivystykseen, vaikka oireita ei olisi."),
                    format!("Om värdet fortfarande är 180/110 eller mer, kontakta hälsostationen i dag eller ring Jourhjälpen {h}. Om det upprepade gånger är 200/130 eller mer, sök dig till jouren även utan symtom."),
                    format!("If it is still 180/110 or more, contact your health centre today or call the medical helpline {h}. If it is 200/130 or more again, go to emergency care even without symptoms."),
                ),
            ],
        ),
        Advice::ChestPain => (
            pick(
                format!("Voimakas rintakipu: soita {e} nyt."),
                format!("Kraftig bröstsmärta: ring {e} nu."),
                format!("Severe chest pain: call {e} now."),
            ),
            vec![
                pick(
                    format!("Soita {e}, jos kipu alkoi äkillisesti tai ei helpota levossa tai nitrolla 10 minuutissa."),
                    format!("Ring {e} om smärtan började plötsligt eller inte lättar i vila eller med nitro inom 10 minuter."),
                    format!("Call {e} if the pain came on suddenly or does not ease with rest or nitrate within 10 minutes."),
                ),
                pick(
                    "Älä aja itse. Istu tai makaa, ja avaa ovi auttajille.".into(),
                    "Kör inte själv. Sitt eller ligg ned och lås upp dörren för hjälparna.".into(),
                    "Do not drive yourself. Sit or lie down, and unlock the door for the helpers.".into(),
                ),
                pick(
                    format!("Jos kipu on jo mennyt ohi, ota yhteyttä terveysasemalle tänään tai soita Päivystysapuun {h}."),
                    format!("Om smärtan redan har gått över, kontakta hälsostationen i dag eller ring Jourhjälpen {h}."),
                    format!("If the pain has already passed, contact your health centre today or call the medical helpline {h}."),
                ),
            ],
        ),
    };
    Guidance {
        advice,
        title,
        steps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_advice_in_every_language_names_the_emergency_number() {
        let n = Numbers::default();
        for advice in [
            Advice::SelfHarm,
            Advice::SevereDepression,
            Advice::LowGlucose,
            Advice::HighGlucose,
            Advice::HighBloodPressure,
            Advice::ChestPain,
        ] {
            for lang in [Lang::Fi, Lang::Sv, Lang::En] {
                let g = guidance(advice, lang, &n);
                let all = g.steps.join(" ") + &g.title;
                assert!(all.contains("112"), "{advice:?} {lang:?}");
            }
        }
        let g = guidance(Advice::SelfHarm, Lang::Fi, &n);
        assert!(g.steps.join(" ").contains("09 2525 0111"));
    }

    #[test]
    fn county_numbers_replace_the_defaults_and_bad_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            Numbers::from_content_dir(Some(dir.path())).unwrap(),
            Numbers::default()
        );
        std::fs::write(
            dir.path().join("safety.json"),
            r#"{"emergency": "112", "medical_helpline": "116 117", "crisis_line": "+358 9 123 4567"}"#,
        )
        .unwrap();
        let n = Numbers::from_content_dir(Some(dir.path())).unwrap();
        assert!(guidance(Advice::SelfHarm, Lang::En, &n)
            .steps
            .join(" ")
            .contains("+358 9 123 4567"));
        std::fs::write(
            dir.path().join("safety.json"),
            r#"{"emergency": "call us", "medical_helpline": "116 117", "crisis_line": "1"}"#,
        )
        .unwrap();
        let e = Numbers::from_content_dir(Some(dir.path())).unwrap_err();
        assert!(e.to_string().contains("emergency"), "{e}");
    }
}

//! The instruments, item by item, with scoring as published (../shared/clinical-reference.md):
//! - PHQ-9: Kroenke, Spitzer & Williams, J Gen Intern Med 2001;16:606. Items 0–3, total 0–27.
//! - GAD-7: Spitzer, Kroenke, Williams & Löwe, Arch Intern Med 2006;166:1092. Items 0–3, total 0–21.
//! - R-BDI: Raitasalo's Finnish 13-item modification of the short BDI (Mielialakysely; THL, school
//!   health checks in grade 8). Each item is answered 1–5 (statement 1 the positive one) and scored
//!   1–2 → 0, 3 → 1, 4 → 2, 5 → 3; total 0–39.
//! - FINDRISC: Lindström & Tuomilehto, Diabetes Care 2003;26:725 (Finnish Diabetes Association form).
//!
//! The texts here are the built-in wording (`wording.rs`, version `polku-1`). The English PHQ-9
//! and GAD-7 wording is the published one. The Finnish and Swedish texts, the R-BDI statements and
//! the FINDRISC texts are this project's own, written after the published forms' meaning and
//! marked not validated. A county replaces them with the validated versions it licenses, as
//! wording files (docs/questionnaires.md); item order, answer values and scoring stay here.

use super::{AnswerOption, Band, Instrument, InstrumentId, Item, Text};

const fn t(fi: &'static str, sv: &'static str, en: &'static str) -> Text {
    Text { fi, sv, en }
}

const fn opt(value: u8, points: u8, text: Text) -> AnswerOption {
    AnswerOption {
        value,
        points,
        text,
    }
}

// ---- PHQ-9 and GAD-7 share the frequency scale ------------------------------------------------

const FREQUENCY: &[AnswerOption] = &[
    opt(0, 0, t("Ei lainkaan", "Inte alls", "Not at all")),
    opt(1, 1, t("Useina päivinä", "Flera dagar", "Several days")),
    opt(
        2,
        2,
        t(
            "Yli puolina päivistä",
            "Mer än hälften av dagarna",
            "More than half the days",
        ),
    ),
    opt(
        3,
        3,
        t("Lähes joka päivä", "Nästan varje dag", "Nearly every day"),
    ),
];

const fn freq(link_id: &'static str, text: Text) -> Item {
    Item {
        link_id,
        text,
        options: FREQUENCY,
    }
}

pub const PHQ9: Instrument = Instrument {
    id: InstrumentId::Phq9,
    title: t("PHQ-9 -masennusoirekysely", "PHQ-9 frågeformulär om depressionssymtom", "Patient Health Questionnaire (PHQ-9)"),
    instructions: t(
        "Kuinka usein seuraavat ongelmat ovat vaivanneet sinua viimeisten kahden viikon aikana?",
        "Hur ofta under de senaste två veckorna har du besvärats av något av följande?",
        "Over the last 2 weeks, how often have you been bothered by any of the following problems?",
    ),
    items: &[
        freq("phq9-1", t("Vähäinen kiinnostus tai mielihyvä asioiden tekemiseen", "Lite intresse för eller glädje av att göra saker", "Little interest or pleasure in doing things")),
        freq("phq9-2", t("Alakuloisuus, masentuneisuus tai toivottomuus", "Känt dig nedstämd, deprimerad eller känt att framtiden ser hopplös ut", "Feeling down, depressed, or hopeless")),
        freq("phq9-3", t("Vaikeus nukahtaa tai pysyä unessa, tai liiallinen nukkuminen", "Svårt att somna eller sova utan avbrott, eller sovit för mycket", "Trouble falling or staying asleep, or sleeping too much")),
        freq("phq9-4", t("Väsymys tai voimattomuus", "Känt dig trött eller haft lite energi", "Feeling tired or having little energy")),
        freq("phq9-5", t("Huono ruokahalu tai ylensyönti", "Dålig aptit eller ätit för mycket", "Poor appetite or overeating")),
        freq("phq9-6", t(
            "Huono olo itsestä – tunne, että on epäonnistunut tai tuottanut pettymyksen itselleen tai perheelleen",
            "Dålig självkänsla – eller känt att du är ett misslyckande eller att du svikit dig själv eller din familj",
            "Feeling bad about yourself — or that you are a failure or have let yourself or your family down",
        )),
        freq("phq9-7", t(
            "Keskittymisvaikeudet esimerkiksi lehteä lukiessa tai televisiota katsoessa",
            "Svårt att koncentrera dig, till exempel när du läser tidningen eller tittar på tv",
            "Trouble concentrating on things, such as reading the newspaper or watching television",
        )),
        freq("phq9-8", t(
            "Liikkuminen tai puhuminen niin hitaasti, että muut ovat voineet huomata sen – tai päinvastoin niin suuri levottomuus, että olet liikkunut paljon tavallista enemmän",
            "Rört dig eller talat så långsamt att andra kunnat märka det – eller motsatsen: varit så rastlös att du rört dig mycket mer än vanligt",
            "Moving or speaking so slowly that other people could have noticed? Or the opposite — being so fidgety or restless that you have been moving around a lot more than usual",
        )),
        freq("phq9-9", t(
            "Ajatukset, että olisi parempi olla kuollut, tai ajatukset itsensä vahingoittamisesta jollakin tavalla",
            "Tankar på att det vore bättre om du var död eller på att skada dig själv på något sätt",
            "Thoughts that you would be better off dead or of hurting yourself in some way",
        )),
    ],
    bands: &[
        Band { code: "minimal", min: 0, max: 4, label: t("vähäiset oireet", "minimala symtom", "minimal") },
        Band { code: "mild", min: 5, max: 9, label: t("lievät oireet", "lindriga symtom", "mild") },
        Band { code: "moderate", min: 10, max: 14, label: t("keskivaikeat oireet", "måttliga symtom", "moderate") },
        Band { code: "moderately_severe", min: 15, max: 19, label: t("melko vaikeat oireet", "medelsvåra symtom", "moderately severe") },
        Band { code: "severe", min: 20, max: 27, label: t("vaikeat oireet", "svåra symtom", "severe") },
    ],
    source: "Kroenke K, Spitzer RL, Williams JB. J Gen Intern Med 2001;16:606-613",
};

pub const GAD7: Instrument = Instrument {
    id: InstrumentId::Gad7,
    title: t(
        "GAD-7 -ahdistuneisuusoirekysely",
        "GAD-7 frågeformulär om ångestsymtom",
        "Generalized Anxiety Disorder 7 (GAD-7)",
    ),
    instructions: t(
        "Kuinka usein seuraavat ongelmat ovat vaivanneet sinua viimeisten kahden viikon aikana?",
        "Hur ofta under de senaste två veckorna har du besvärats av något av följande?",
        "Over the last 2 weeks, how often have you been bothered by the following problems?",
    ),
    items: &[
        freq(
            "gad7-1",
            t(
                "Hermostuneisuus, ahdistuneisuus tai kireys",
                "Känt dig nervös, ängslig eller på helspänn",
                "Feeling nervous, anxious or on edge",
            ),
        ),
        freq(
            "gad7-2",
            t(
                "Kyvyttömyys lopettaa tai hallita huolehtimista",
                "Inte kunnat sluta oroa dig eller kontrollera oron",
                "Not being able to stop or control worrying",
            ),
        ),
        freq(
            "gad7-3",
            t(
                "Liiallinen huolehtiminen eri asioista",
                "Oroat dig för mycket för olika saker",
                "Worrying too much about different things",
            ),
        ),
        freq(
            "gad7-4",
            t(
                "Vaikeus rentoutua",
                "Svårt att slappna av",
                "Trouble relaxing",
            ),
        ),
        freq(
            "gad7-5",
            t(
                "Niin suuri levottomuus, että on vaikea pysyä paikallaan",
                "Så rastlös att det är svårt att sitta stilla",
                "Being so restless that it is hard to sit still",
            ),
        ),
        freq(
            "gad7-6",
            t(
                "Taipumus ärsyyntyä tai hermostua helposti",
                "Blivit lätt irriterad eller retlig",
                "Becoming easily annoyed or irritable",
            ),
        ),
        freq(
            "gad7-7",
            t(
                "Pelko, että jotain kauheaa saattaa tapahtua",
                "Känt dig rädd, som om något hemskt skulle kunna hända",
                "Feeling afraid as if something awful might happen",
            ),
        ),
    ],
    bands: &[
        Band {
            code: "minimal",
            min: 0,
            max: 4,
            label: t("vähäinen ahdistuneisuus", "minimal ångest", "minimal"),
        },
        Band {
            code: "mild",
            min: 5,
            max: 9,
            label: t("lievä ahdistuneisuus", "lindrig ångest", "mild"),
        },
        Band {
            code: "moderate",
            min: 10,
            max: 14,
            label: t("keskivaikea ahdistuneisuus", "måttlig ångest", "moderate"),
        },
        Band {
            code: "severe",
            min: 15,
            max: 21,
            label: t("vaikea ahdistuneisuus", "svår ångest", "severe"),
        },
    ],
    source: "Spitzer RL, Kroenke K, Williams JBW, Löwe B. Arch Intern Med 2006;166:1092-1097",
};

// ---- R-BDI: 13 items, statements 1 (positive) to 5 -------------------------------------------

const RBDI_POINTS: [u8; 5] = [0, 0, 1, 2, 3];

macro_rules! rbdi_item {
    ($id:literal, $topic:expr, [$s1:expr, $s2:expr, $s3:expr, $s4:expr, $s5:expr $(,)?] $(,)?) => {
        Item {
            link_id: $id,
            text: $topic,
            options: &[
                opt(1, RBDI_POINTS[0], $s1),
                opt(2, RBDI_POINTS[1], $s2),
                opt(3, RBDI_POINTS[2], $s3),
                opt(4, RBDI_POINTS[3], $s4),
                opt(5, RBDI_POINTS[4], $s5),
            ],
        }
    };
}

pub const RBDI: Instrument = Instrument {
    id: InstrumentId::Rbdi,
    title: t("Mielialakysely (R-BDI)", "Stämningsformulär (R-BDI)", "Mood questionnaire (R-BDI)"),
    instructions: t(
        "Valitse kustakin ryhmästä se väittämä, joka parhaiten kuvaa nykyistä tilannettasi.",
        "Välj i varje grupp det påstående som bäst beskriver hur du har det nu.",
        "From each group, choose the statement that best describes how you are now.",
    ),
    items: &[
        rbdi_item!("rbdi-1", t("Mieliala", "Stämning", "Mood"), [
            t("Mielialani on melko valoisa ja hyvä", "Mitt humör är ganska ljust och bra", "My mood is fairly bright and good"),
            t("En ole surullinen", "Jag är inte ledsen", "I do not feel sad"),
            t("Tunnen itseni usein alakuloiseksi tai surulliseksi", "Jag känner mig ofta nedstämd eller ledsen", "I often feel low or sad"),
            t("Olen alakuloinen koko ajan enkä pääse siitä", "Jag är nedstämd hela tiden och kommer inte ur det", "I am low all the time and cannot get out of it"),
            t("Olen niin surullinen tai onneton, etten kestä sitä", "Jag är så ledsen eller olycklig att jag inte står ut", "I am so sad or unhappy that I cannot bear it"),
        ]),
        rbdi_item!("rbdi-2", t("Tulevaisuus", "Framtiden", "The future"), [
            t("Suhtaudun tulevaisuuteeni luottavaisesti", "Jag ser tillitsfullt på min framtid", "I look to my future with confidence"),
            t("En ole erityisen huolissani tulevaisuudestani", "Jag är inte särskilt orolig för min framtid", "I am not particularly worried about my future"),
            t("Tulevaisuus tuntuu minusta usein synkältä", "Framtiden känns ofta dyster", "The future often seems gloomy to me"),
            t("Minusta tuntuu, ettei minulla ole mitään odotettavaa", "Det känns som om jag inte har något att se fram emot", "I feel I have nothing to look forward to"),
            t("Tulevaisuus tuntuu toivottomalta, eikä mikään muutu paremmaksi", "Framtiden känns hopplös och ingenting blir bättre", "The future feels hopeless and nothing will get better"),
        ]),
        rbdi_item!("rbdi-3", t("Onnistuminen", "Att lyckas", "Success"), [
            t("Tunnen onnistuneeni elämässä hyvin", "Jag känner att jag har lyckats bra i livet", "I feel I have done well in life"),
            t("En tunne epäonnistuneeni", "Jag känner mig inte misslyckad", "I do not feel like a failure"),
            t("Tunnen epäonnistuneeni useammin kuin muut", "Jag känner att jag misslyckats oftare än andra", "I feel I have failed more often than others"),
            t("Kun katson taaksepäin, näen paljon epäonnistumisia", "När jag ser tillbaka ser jag många misslyckanden", "Looking back, I see a lot of failures"),
            t("Tunnen epäonnistuneeni täysin ihmisenä", "Jag känner mig totalt misslyckad som människa", "I feel I am a complete failure as a person"),
        ]),
        rbdi_item!("rbdi-4", t("Tyytyväisyys", "Tillfredsställelse", "Satisfaction"), [
            t("Olen tyytyväinen elämääni", "Jag är nöjd med mitt liv", "I am satisfied with my life"),
            t("Saan asioista yhtä paljon tyydytystä kuin ennenkin", "Jag får lika mycket tillfredsställelse av saker som förut", "I get as much satisfaction out of things as I used to"),
            t("En nauti asioista niin kuin ennen", "Jag njuter inte av saker som förut", "I do not enjoy things the way I used to"),
            t("Mikään ei juuri tuota minulle tyydytystä", "Nästan ingenting ger mig tillfredsställelse", "Hardly anything gives me satisfaction"),
            t("Olen tyytymätön kaikkeen", "Jag är missnöjd med allt", "I am dissatisfied with everything"),
        ]),
        rbdi_item!("rbdi-5", t("Syyllisyys", "Skuld", "Guilt"), [
            t("Tunnen olevani hyväksytty sellaisena kuin olen", "Jag känner mig accepterad sådan jag är", "I feel accepted as I am"),
            t("En tunne itseäni erityisen syylliseksi", "Jag känner mig inte särskilt skyldig", "I do not feel particularly guilty"),
            t("Tunnen usein syyllisyyttä asioista", "Jag känner ofta skuld för saker", "I often feel guilty about things"),
            t("Tunnen syyllisyyttä useimmiten", "Jag känner skuld för det mesta", "I feel guilty most of the time"),
            t("Tunnen itseni syylliseksi koko ajan", "Jag känner mig skyldig hela tiden", "I feel guilty all of the time"),
        ]),
        rbdi_item!("rbdi-6", t("Suhtautuminen itseen", "Synen på mig själv", "How I see myself"), [
            t("Pidän itsestäni ja olen tyytyväinen itseeni", "Jag tycker om mig själv och är nöjd med mig", "I like myself and am pleased with who I am"),
            t("En ole pettynyt itseeni", "Jag är inte besviken på mig själv", "I am not disappointed in myself"),
            t("Olen pettynyt itseeni", "Jag är besviken på mig själv", "I am disappointed in myself"),
            t("Inhoan itseäni", "Jag avskyr mig själv", "I dislike myself"),
            t("Vihaan itseäni", "Jag hatar mig själv", "I hate myself"),
        ]),
        rbdi_item!("rbdi-7", t("Ajatukset itsensä vahingoittamisesta", "Tankar på att skada sig själv", "Thoughts of harming myself"), [
            t("Minulla ei ole ajatuksia itseni vahingoittamisesta", "Jag har inga tankar på att skada mig själv", "I have no thoughts of harming myself"),
            t("Ajatus itseni vahingoittamisesta ei käy mielessäni", "Tanken på att skada mig själv slår mig inte", "The thought of harming myself does not cross my mind"),
            t("Minulla on joskus ajatuksia itseni vahingoittamisesta, mutta en toteuttaisi niitä", "Jag har ibland tankar på att skada mig själv men skulle inte göra det", "I sometimes have thoughts of harming myself, but I would not act on them"),
            t("Haluaisin kuolla", "Jag skulle vilja dö", "I would like to die"),
            t("Vahingoittaisin itseäni, jos voisin", "Jag skulle skada mig själv om jag kunde", "I would harm myself if I could"),
        ]),
        rbdi_item!("rbdi-8", t("Kiinnostus muihin ihmisiin", "Intresse för andra människor", "Interest in other people"), [
            t("Olen kiinnostunut muista ihmisistä ja heidän asioistaan", "Jag är intresserad av andra människor och deras angelägenheter", "I am interested in other people and their lives"),
            t("En ole menettänyt kiinnostustani muihin ihmisiin", "Jag har inte förlorat intresset för andra människor", "I have not lost interest in other people"),
            t("Olen vähemmän kiinnostunut muista ihmisistä kuin ennen", "Jag är mindre intresserad av andra än förut", "I am less interested in other people than I used to be"),
            t("Olen menettänyt suurimman osan kiinnostuksestani muihin", "Jag har förlorat det mesta av mitt intresse för andra", "I have lost most of my interest in other people"),
            t("Olen menettänyt kaiken kiinnostukseni muihin ihmisiin", "Jag har förlorat allt intresse för andra människor", "I have lost all interest in other people"),
        ]),
        rbdi_item!("rbdi-9", t("Päätösten tekeminen", "Att fatta beslut", "Making decisions"), [
            t("Teen päätöksiä helposti", "Jag fattar beslut lätt", "I make decisions easily"),
            t("Teen päätöksiä yhtä hyvin kuin ennenkin", "Jag fattar beslut lika bra som förut", "I make decisions as well as I ever did"),
            t("Lykkään päätösten tekemistä tavallista useammin", "Jag skjuter upp beslut oftare än vanligt", "I put off making decisions more than usual"),
            t("Minulla on suuria vaikeuksia tehdä päätöksiä", "Jag har stora svårigheter att fatta beslut", "I have great difficulty making decisions"),
            t("En pysty tekemään lainkaan päätöksiä", "Jag kan inte fatta några beslut alls", "I cannot make any decisions at all"),
        ]),
        rbdi_item!("rbdi-10", t("Oma ulkonäkö", "Mitt utseende", "My appearance"), [
            t("Olen tyytyväinen ulkonäkööni", "Jag är nöjd med mitt utseende", "I am pleased with how I look"),
            t("En tunne näyttäväni huonommalta kuin ennen", "Jag känner inte att jag ser sämre ut än förut", "I do not feel I look any worse than before"),
            t("Olen huolissani siitä, että näytän epämiellyttävältä", "Jag är orolig för att jag ser oattraktiv ut", "I worry that I look unattractive"),
            t("Tunnen ulkonäköni muuttuneen pysyvästi epämiellyttäväksi", "Jag känner att mitt utseende blivit bestående oattraktivt", "I feel my looks have changed for the worse for good"),
            t("Tunnen olevani ruma", "Jag känner mig ful", "I feel that I am ugly"),
        ]),
        rbdi_item!("rbdi-11", t("Asioiden hoitaminen", "Att få saker gjorda", "Getting things done"), [
            t("Saan asiat tehdyksi helposti", "Jag får saker gjorda lätt", "I get things done easily"),
            t("Pystyn tekemään asioita yhtä hyvin kuin ennenkin", "Jag klarar saker lika bra som förut", "I can do things as well as before"),
            t("Asioihin tarttuminen vaatii minulta ylimääräistä ponnistelua", "Det kräver extra ansträngning att ta itu med saker", "It takes extra effort to get started on things"),
            t("Minun on pakotettava itseni tekemään mitään", "Jag måste tvinga mig själv att göra något", "I have to push myself hard to do anything"),
            t("En pysty tekemään mitään", "Jag klarar inte av att göra någonting", "I cannot do anything at all"),
        ]),
        rbdi_item!("rbdi-12", t("Väsymys", "Trötthet", "Tiredness"), [
            t("Jaksan hyvin", "Jag orkar bra", "I have plenty of energy"),
            t("En väsy tavallista helpommin", "Jag blir inte tröttare än vanligt", "I do not get tired more easily than usual"),
            t("Väsyn helpommin kuin ennen", "Jag blir trött lättare än förut", "I get tired more easily than I used to"),
            t("Väsyn melkein mistä tahansa", "Jag blir trött av nästan vad som helst", "I get tired from doing almost anything"),
            t("Olen liian väsynyt tehdäkseni mitään", "Jag är för trött för att göra något", "I am too tired to do anything"),
        ]),
        rbdi_item!("rbdi-13", t("Ruokahalu", "Aptit", "Appetite"), [
            t("Ruokahaluni on hyvä", "Min aptit är god", "My appetite is good"),
            t("Ruokahaluni ei ole huonompi kuin ennen", "Min aptit är inte sämre än förut", "My appetite is no worse than usual"),
            t("Ruokahaluni on huonompi kuin ennen", "Min aptit är sämre än förut", "My appetite is not as good as it was"),
            t("Ruokahaluni on paljon huonompi kuin ennen", "Min aptit är mycket sämre än förut", "My appetite is much worse than before"),
            t("Minulla ei ole lainkaan ruokahalua", "Jag har ingen aptit alls", "I have no appetite at all"),
        ]),
    ],
    bands: &[
        Band { code: "none", min: 0, max: 4, label: t("ei masentuneisuutta", "ingen nedstämdhet", "no depressive symptoms") },
        Band { code: "mild", min: 5, max: 7, label: t("lievä masentuneisuus", "lindrig nedstämdhet", "mild") },
        Band { code: "moderate", min: 8, max: 15, label: t("keskivaikea masentuneisuus", "måttlig nedstämdhet", "moderate") },
        Band { code: "severe", min: 16, max: 39, label: t("vaikea masentuneisuus", "svår nedstämdhet", "severe") },
    ],
    source: "Raitasalo R. Mielialakysely (R-BDI). Kela/THL; Kaltiala-Heino R ym. Suom Lääkäril 1998;53:3891",
};

// ---- FINDRISC ----------------------------------------------------------------------------------

const YES_NO_REVERSED: &[AnswerOption] = &[
    opt(0, 0, t("Kyllä", "Ja", "Yes")),
    opt(1, 2, t("Ei", "Nej", "No")),
];

pub const FINDRISC: Instrument = Instrument {
    id: InstrumentId::Findrisc,
    title: t("Tyypin 2 diabeteksen riskitesti (FINDRISC)", "Risktest för typ 2-diabetes (FINDRISC)", "Type 2 diabetes risk test (FINDRISC)"),
    instructions: t(
        "Valitse kuhunkin kysymykseen sopivin vaihtoehto. Testi arvioi riskiä sairastua tyypin 2 diabetekseen seuraavan 10 vuoden aikana.",
        "Välj det alternativ som passar bäst. Testet bedömer risken att insjukna i typ 2-diabetes under de kommande 10 åren.",
        "Choose the answer that fits you best. The test estimates the risk of developing type 2 diabetes within the next 10 years.",
    ),
    items: &[
        Item {
            link_id: "findrisc-age",
            text: t("Ikä", "Ålder", "Age"),
            options: &[
                opt(0, 0, t("alle 45 vuotta", "under 45 år", "under 45 years")),
                opt(1, 2, t("45–54 vuotta", "45–54 år", "45–54 years")),
                opt(2, 3, t("55–64 vuotta", "55–64 år", "55–64 years")),
                opt(3, 4, t("yli 64 vuotta", "över 64 år", "over 64 years")),
            ],
        },
        Item {
            link_id: "findrisc-bmi",
            text: t("Painoindeksi (BMI)", "Kroppsmasseindex (BMI)", "Body mass index (BMI)"),
            options: &[
                opt(0, 0, t("alle 25 kg/m²", "under 25 kg/m²", "lower than 25 kg/m²")),
                opt(1, 1, t("25–30 kg/m²", "25–30 kg/m²", "25–30 kg/m²")),
                opt(2, 3, t("yli 30 kg/m²", "över 30 kg/m²", "higher than 30 kg/m²")),
            ],
        },
        Item {
            link_id: "findrisc-waist",
            text: t("Vyötärönympärys kylkiluiden alapuolelta (yleensä navan kohdalta)", "Midjemått mätt under revbenen (vanligen vid naveln)", "Waist circumference measured below the ribs (usually at the navel)"),
            options: &[
                opt(0, 0, t("miehet alle 94 cm, naiset alle 80 cm", "män under 94 cm, kvinnor under 80 cm", "men less than 94 cm, women less than 80 cm")),
                opt(1, 3, t("miehet 94–102 cm, naiset 80–88 cm", "män 94–102 cm, kvinnor 80–88 cm", "men 94–102 cm, women 80–88 cm")),
                opt(2, 4, t("miehet yli 102 cm, naiset yli 88 cm", "män över 102 cm, kvinnor över 88 cm", "men more than 102 cm, women more than 88 cm")),
            ],
        },
        Item {
            link_id: "findrisc-activity",
            text: t(
                "Liikutko päivittäin vähintään 30 minuuttia (työssä tai vapaa-aikana, arkiliikunta mukaan lukien)?",
                "Rör du på dig minst 30 minuter varje dag (i arbetet eller på fritiden, vardagsmotion inräknad)?",
                "Do you usually have daily at least 30 minutes of physical activity at work and/or during leisure time (including normal daily activity)?",
            ),
            options: YES_NO_REVERSED,
        },
        Item {
            link_id: "findrisc-vegetables",
            text: t("Kuinka usein syöt kasviksia, hedelmiä tai marjoja?", "Hur ofta äter du grönsaker, frukt eller bär?", "How often do you eat vegetables, fruit or berries?"),
            options: &[opt(0, 0, t("päivittäin", "varje dag", "every day")), opt(1, 1, t("harvemmin", "inte varje dag", "not every day"))],
        },
        Item {
            link_id: "findrisc-bp-medication",
            text: t("Onko sinulla koskaan ollut säännöllisesti käytössä verenpainelääkitystä?", "Har du någonsin regelbundet använt blodtrycksmedicin?", "Have you ever taken medication for high blood pressure on a regular basis?"),
            options: &[opt(0, 0, t("ei", "nej", "no")), opt(1, 2, t("kyllä", "ja", "yes"))],
        },
        Item {
            link_id: "findrisc-high-glucose",
            text: t(
                "Onko verensokerisi joskus todettu korkeaksi (esim. terveystarkastuksessa, sairauden tai raskauden aikana)?",
                "Har du någon gång haft för högt blodsocker (t.ex. vid hälsokontroll, sjukdom eller graviditet)?",
                "Have you ever been found to have high blood glucose (e.g. in a health examination, during an illness or pregnancy)?",
            ),
            options: &[opt(0, 0, t("ei", "nej", "no")), opt(1, 5, t("kyllä", "ja", "yes"))],
        },
        Item {
            link_id: "findrisc-family",
            text: t(
                "Onko lähisuvussasi todettu tyypin 1 tai tyypin 2 diabetesta?",
                "Har någon av dina nära släktingar fått diagnosen typ 1- eller typ 2-diabetes?",
                "Have any of the members of your immediate family or other relatives been diagnosed with diabetes (type 1 or type 2)?",
            ),
            options: &[
                opt(0, 0, t("ei", "nej", "no")),
                opt(1, 3, t("kyllä: isovanhemmat, täti, setä, eno tai serkku", "ja: mor- eller farföräldrar, moster, faster, morbror, farbror eller kusin", "yes: grandparent, aunt, uncle or first cousin")),
                opt(2, 5, t("kyllä: vanhemmat, sisarus tai oma lapsi", "ja: förälder, syskon eller eget barn", "yes: parent, brother, sister or own child")),
            ],
        },
    ],
    bands: &[
        Band { code: "low", min: 0, max: 6, label: t("matala riski (noin 1/100 sairastuu 10 vuodessa)", "låg risk (cirka 1 av 100 insjuknar inom 10 år)", "low (about 1 in 100 will develop diabetes in 10 years)") },
        Band { code: "slightly_elevated", min: 7, max: 11, label: t("lievästi kohonnut riski (noin 1/25)", "något förhöjd risk (cirka 1 av 25)", "slightly elevated (about 1 in 25)") },
        Band { code: "moderate", min: 12, max: 14, label: t("kohtalainen riski (noin 1/6)", "måttlig risk (cirka 1 av 6)", "moderate (about 1 in 6)") },
        Band { code: "high", min: 15, max: 20, label: t("korkea riski (noin 1/3)", "hög risk (cirka 1 av 3)", "high (about 1 in 3)") },
        Band { code: "very_high", min: 21, max: 26, label: t("erittäin korkea riski (noin 1/2)", "mycket hög risk (cirka 1 av 2)", "very high (about 1 in 2)") },
    ],
    source: "Lindström J, Tuomilehto J. Diabetes Care 2003;26:725-731 (Finnish Diabetes Association FINDRISC form)",
};

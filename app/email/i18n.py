"""One small catalog per locale. Values are str.format templates; HTML escaping happens in Jinja.

A count of points (`points=`, an int) is written with the locale's digit grouping, as the widget
writes it ("12.500" in Danish); for exactly 1 a key's `.one` variant is used where the catalog
has one (English: "1 point"; the Nordic words for points do not change).
"""
from __future__ import annotations

from babel.numbers import format_decimal

CATALOGS: dict[str, dict[str, str]] = {
    "en": {
        "unsubscribe.question": "Unsubscribe from {shop} marketing emails?",
        "unsubscribe.explain": "You will no longer receive marketing emails from {shop}'s rewards program (birthday "
                               "greetings, reminders, offers and program news). You will still receive the reward "
                               "codes you redeem and notices that your points have expired.",
        "unsubscribe.done": "You are unsubscribed from {shop} marketing emails. Reward codes you redeem and notices "
                            "of expired points are still sent.",
        "date_format": "%Y-%m-%d",
        "greeting": "Hi {name},",
        "greeting_anonymous": "Hi there,",
        "balance": "You have {points} points.",
        "balance.one": "You have {points} point.",
        "tier": "Your tier: {tier}.",
        "afford": "That is enough for {reward}.",
        "visit": "Visit {shop}",
        "footer": "You receive this email because you are a member of the {shop} rewards program.",
        "unsubscribe": "Unsubscribe",
        "tier_reached.subject": "You have reached {tier} at {shop}!",
        "tier_reached.body": "Congratulations, you are now a {tier} member.",
        "reward_issued.subject": "Your reward code from {shop}",
        "reward_issued.body": "Here is your code for {reward}:",
        "reward_issued.hint": "Use it at checkout.",
        "birthday.subject": "Happy birthday from {shop}!",
        "birthday.body": "We have added {points} points to your account to celebrate.",
        "birthday.body.one": "We have added {points} point to your account to celebrate.",
        "points_expired.subject": "Your {shop} points have expired",
        "points_expired.body": "{points} points expired after a period without activity.",
        "points_expired.body.one": "{points} point expired after a period without activity.",
        "points_expiring.subject": "Your {shop} points expire soon",
        "points_expiring.body": "{points} points expire on {date}. Use them before then.",
        "points_expiring.body.one": "{points} point expires on {date}. Use it before then.",
        "referral_completed.subject": "Your friend shopped at {shop} - thank you!",
        "referral_completed.body": "A friend you referred placed their first order, and your referral reward is in your account.",
        "winback_reminder.subject": "We miss you at {shop}",
        "winback_reminder.body": "It has been a while since your last visit. Your points are still waiting for you.",
        "winback_incentive.subject": "{points} bonus points from {shop}",
        "winback_incentive.subject.one": "{points} bonus point from {shop}",
        "winback_incentive.body": "To welcome you back, we have added {points} bonus points to your account.",
        "winback_incentive.body.one": "To welcome you back, we have added {points} bonus point to your account.",
    },
    "nb": {
        "unsubscribe.question": "Melde deg av markedsføringse-poster fra {shop}?",
        "unsubscribe.explain": "Du vil ikke lenger få markedsføringse-post fra fordelsprogrammet til {shop} "
                               "(bursdagshilsener, påminnelser, tilbud og nyheter om programmet). Du får fortsatt "
                               "belønningskoder du løser inn, og beskjed når poengene dine har utløpt.",
        "unsubscribe.done": "Du er meldt av markedsføringse-postene fra {shop}. Belønningskoder du løser inn og "
                            "beskjed om utløpte poeng sendes fortsatt.",
        "date_format": "%d.%m.%Y",
        "greeting": "Hei {name},",
        "greeting_anonymous": "Hei,",
        "balance": "Du har {points} poeng.",
        "tier": "Ditt nivå: {tier}.",
        "afford": "Det holder til {reward}.",
        "visit": "Besøk {shop}",
        "footer": "Du får denne e-posten fordi du er medlem av fordelsprogrammet til {shop}.",
        "unsubscribe": "Meld deg av",
        "tier_reached.subject": "Du har nådd {tier} hos {shop}!",
        "tier_reached.body": "Gratulerer, du er nå {tier}-medlem.",
        "reward_issued.subject": "Din belønningskode fra {shop}",
        "reward_issued.body": "Her er koden din for {reward}:",
        "reward_issued.hint": "Bruk den i kassen.",
        "birthday.subject": "Gratulerer med dagen fra {shop}!",
        "birthday.body": "Vi har lagt til {points} poeng på kontoen din for å feire.",
        "points_expired.subject": "Poengene dine hos {shop} har utløpt",
        "points_expired.body": "{points} poeng utløp etter en periode uten aktivitet.",
        "points_expiring.subject": "Poengene dine hos {shop} utløper snart",
        "points_expiring.body": "{points} poeng utløper {date}. Bruk dem før det.",
        "referral_completed.subject": "Vennen din handlet hos {shop} – takk!",
        "referral_completed.body": "En venn du vervet har lagt inn sin første bestilling, og vervebelønningen din er på kontoen.",
        "winback_reminder.subject": "Vi savner deg hos {shop}",
        "winback_reminder.body": "Det er en stund siden sist du handlet hos oss. Poengene dine venter fortsatt på deg.",
        "winback_incentive.subject": "{points} bonuspoeng fra {shop}",
        "winback_incentive.body": "For å ønske deg velkommen tilbake har vi lagt til {points} bonuspoeng på kontoen din.",
    },
    "da": {
        "unsubscribe.question": "Afmeld markedsførings-e-mails fra {shop}?",
        "unsubscribe.explain": "Du vil ikke længere modtage markedsførings-e-mails fra {shop}s fordelsprogram "
                               "(fødselsdagshilsner, påmindelser, tilbud og nyheder om programmet). Du modtager "
                               "stadig de belønningskoder, du indløser, og besked, når dine point er udløbet.",
        "unsubscribe.done": "Du er afmeldt markedsførings-e-mails fra {shop}. Belønningskoder, du indløser, og "
                            "besked om udløbne point sendes stadig.",
        "date_format": "%d.%m.%Y",
        "greeting": "Hej {name},",
        "greeting_anonymous": "Hej,",
        "balance": "Du har {points} point.",
        "tier": "Dit niveau: {tier}.",
        "afford": "Det rækker til {reward}.",
        "visit": "Besøg {shop}",
        "footer": "Du modtager denne e-mail, fordi du er medlem af {shop}s fordelsprogram.",
        "unsubscribe": "Afmeld",
        "tier_reached.subject": "Du har nået {tier} hos {shop}!",
        "tier_reached.body": "Tillykke, du er nu {tier}-medlem.",
        "reward_issued.subject": "Din belønningskode fra {shop}",
        "reward_issued.body": "Her er din kode til {reward}:",
        "reward_issued.hint": "Brug den ved kassen.",
        "birthday.subject": "Tillykke med fødselsdagen fra {shop}!",
        "birthday.body": "Vi har tilføjet {points} point til din konto for at fejre det.",
        "points_expired.subject": "Dine point hos {shop} er udløbet",
        "points_expired.body": "{points} point udløb efter en periode uden aktivitet.",
        "points_expiring.subject": "Dine point hos {shop} udløber snart",
        "points_expiring.body": "{points} point udløber {date}. Brug dem inden da.",
        "referral_completed.subject": "Din ven handlede hos {shop} – tak!",
        "referral_completed.body": "En ven, du har henvist, har afgivet sin første ordre, og din henvisningsbelønning er på din konto.",
        "winback_reminder.subject": "Vi savner dig hos {shop}",
        "winback_reminder.body": "Det er et stykke tid siden, du sidst handlede hos os. Dine point venter stadig på dig.",
        "winback_incentive.subject": "{points} bonuspoint fra {shop}",
        "winback_incentive.body": "For at byde dig velkommen tilbage har vi tilføjet {points} bonuspoint til din konto.",
    },
    "sv": {
        "unsubscribe.question": "Avregistrera dig från marknadsföringsmejl från {shop}?",
        "unsubscribe.explain": "Du kommer inte längre att få marknadsföringsmejl från {shop}s förmånsprogram "
                               "(födelsedagshälsningar, påminnelser, erbjudanden och nyheter om programmet). Du får "
                               "fortfarande belöningskoder som du löser in och besked när dina poäng har gått ut.",
        "unsubscribe.done": "Du är avregistrerad från marknadsföringsmejl från {shop}. Belöningskoder som du löser "
                            "in och besked om utgångna poäng skickas fortfarande.",
        "date_format": "%Y-%m-%d",
        "greeting": "Hej {name},",
        "greeting_anonymous": "Hej,",
        "balance": "Du har {points} poäng.",
        "tier": "Din nivå: {tier}.",
        "afford": "Det räcker till {reward}.",
        "visit": "Besök {shop}",
        "footer": "Du får det här mejlet eftersom du är medlem i {shop}s förmånsprogram.",
        "unsubscribe": "Avregistrera dig",
        "tier_reached.subject": "Du har nått {tier} hos {shop}!",
        "tier_reached.body": "Grattis, du är nu {tier}-medlem.",
        "reward_issued.subject": "Din belöningskod från {shop}",
        "reward_issued.body": "Här är din kod för {reward}:",
        "reward_issued.hint": "Använd den i kassan.",
        "birthday.subject": "Grattis på födelsedagen från {shop}!",
        "birthday.body": "Vi har lagt till {points} poäng på ditt konto för att fira.",
        "points_expired.subject": "Dina poäng hos {shop} har gått ut",
        "points_expired.body": "{points} poäng gick ut efter en period utan aktivitet.",
        "points_expiring.subject": "Dina poäng hos {shop} går snart ut",
        "points_expiring.body": "{points} poäng går ut {date}. Använd dem innan dess.",
        "referral_completed.subject": "Din vän handlade hos {shop} – tack!",
        "referral_completed.body": "En vän du värvat har gjort sin första beställning, och din värvningsbelöning finns på ditt konto.",
        "winback_reminder.subject": "Vi saknar dig hos {shop}",
        "winback_reminder.body": "Det var ett tag sedan du handlade hos oss. Dina poäng väntar fortfarande på dig.",
        "winback_incentive.subject": "{points} bonuspoäng från {shop}",
        "winback_incentive.body": "För att välkomna dig tillbaka har vi lagt till {points} bonuspoäng på ditt konto.",
    },
}
# Norwegian without a written standard named (no, nn) reads Bokmål; anything unknown reads English.
ALIASES = {"no": "nb", "nn": "nb"}
DEFAULT_LOCALE = "en"


def resolve_locale(locale: str | None) -> str:
    """'nb-NO', 'sv_SE', 'da' -> a catalog we have; English when we have none."""
    language = (locale or "").replace("_", "-").split("-")[0].lower()
    language = ALIASES.get(language, language)
    return language if language in CATALOGS else DEFAULT_LOCALE


def translator(locale: str):
    locale = resolve_locale(locale)
    catalog = CATALOGS[locale]

    def t(key: str, **values) -> str:
        count = values.get("points")
        if type(count) is int:
            if count == 1 and f"{key}.one" in catalog:
                key = f"{key}.one"
            values["points"] = format_decimal(count, locale=locale)
        return catalog[key].format(**values)

    return t

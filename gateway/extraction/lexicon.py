"""Word lists for the one-time-code extractor, by role and language, and the
patterns built from them with which ``index.MessageIndex`` finds where they
occur in one message.

Each list holds lower-case patterns for Python's ``re``, matched against the
lower-cased message. Entries for spaced scripts match whole words (a trailing
``\\w*`` allows inflected forms); the ``*_CJK`` lists, for scripts written
without spaces (Chinese, Japanese, Thai) or with prefixes and particles glued
to words (Hebrew, Arabic, Korean), match anywhere.

Roles:

- ``CODE``: nouns naming a one-time secret ("code", "OTP", "PIN", "password"
  and their equivalents). A candidate needs one of these nearby.
- ``CODE_SUFFIX``: endings of compound words that name one ("Sicherheitscode",
  "verifieringskod", "kertakäyttökoodi").
- ``NOT_CODE_PREFIX``: compounds built on those endings that name something
  else ("postcode", "Gutscheincode", "barcode", "encode").
- ``QUALIFIER``: words that say what the secret is for ("verification",
  "login", "one-time"); they strengthen a nearby code word, never replace it.
- ``NOT_CODE_QUALIFIER``: words that, just before a code word, make it a code
  of another kind ("tracking code", "promo code", "postal code", "gift card
  code"); the code word then counts for nothing.
- ``IDENTIFIER``: words that, just before a number, say what else it is
  (order, invoice, account, card, phone number, amount, reference...).
- ``PROMOTION``: marketing words; a code in an offer is a discount code.
- ``MEETING`` and ``BOOKING``: meetings and bookings, whose PINs and
  passcodes are not sign-in codes.
- ``ENTRY_VERB``: "enter", "use", "type"... right before a number.
- ``CONNECTOR``: little words between a code word and the code ("is", "ist",
  "est", "lautet", "your", "是", "は") that do not weaken the link.
- ``CURRENCY`` and ``UNIT``: what marks a number as an amount or a quantity.

Matching lower-cased text is several times faster than ``re.IGNORECASE``, and
one pass over the words (``WORD_RE``, grouped by first letter) serves every role.
"""

from __future__ import annotations

import re
import unicodedata
from itertools import chain
from re import _parser as sre_parse  # type: ignore[attr-defined]  # typeshed stubs only sre_parse
from string import ascii_letters as ASCII_LETTERS
from typing import Any

CODE: tuple[str, ...] = (
    # English and international
    r"codes?", r"passcodes?", r"otps?", r"pins?", r"pincodes?", r"passwords?", r"passwd",
    r"2fa", r"mfa", r"tan", r"mtan", r"smstan", r"token\w*", r"captchas?", r"капч\w*",
    # German, Dutch, Scandinavian, Finnish (single words; compounds via CODE_SUFFIX)
    r"passwort\w*", r"kennwort\w*", r"wachtwoord\w*", r"lösenord\w*", r"losenord\w*",
    r"passord\w*", r"kodeord\w*", r"salasana\w*", r"koodi\w*", r"kood\w*",
    # Icelandic, Irish, Welsh, Basque, Maltese, Swahili
    r"kóð\w*", r"c[hw]?[óò]d", r"kodea", r"kodiċi", r"msimbo",
    # Asturian, Occitan, Haitian, Frisian, Esperanto, African languages, Maori
    r"c[oó]digu", r"còd[ei]", r"kòd", r"koade", r"kodo\w*", r"ikhodi", r"ikhowudi",
    r"koodu", r"koodh\w*", r"kaody", r"waehere", r"lambar (?:tabbatarwa|sirri)",
    r"namba(?:ri)?(?: yako| yenu)? ya (?:siri|uthibitisho|kuthibitisha)",
    # Romance
    r"c[oó]digos?", r"cdigo", r"codi", r"codice", r"codici", r"codul(?:ui)?", r"cod",
    r"mot(?:s)? de passe", r"clave", r"contrase[ñn]a", r"senhas?", r"parol[aă]?",
    # Slavic, Baltic, Hungarian, Turkic, Albanian, Georgian (transliterated), Indonesian
    r"k[oó]d\w*", r"kôd\w*", r"has[łl][oae]\w*", r"hesl[oae]\w*", r"lozink\w*", r"gesl[oa]",
    r"jelsz[oó]\w*", r"[şs]ifre\w*", r"sandi", r"kodas", r"kods",
    r"код\w*", r"парол\w*", r"пин", r"пін", r"токен\w*",
    # Greek
    r"κ[ωώ]δικ\w*", r"συνθηματικ\w*",
    # Vietnamese ("mã" alone is too common a syllable, so only in phrases)
    r"m[aã] (?:x[aá]c|otp|k[ií]ch|b[aả]o|đăng|dang|giao|pin|s[oố])\w*",
    # ... or one to enter, or the one that follows: "nhập các mã sau", "mã dưới đây"
    r"(?:nh[aậ]p|d[uù]ng|s[uử] d[uụ]ng) (?:c[aá]c )?m[aã]", r"m[aã] (?:sau|d[uư][oớ]i)",
    r"m[aậ]t kh[aẩ]u",
    # Passwords and tokens as common translations name them (WordPress, Mozilla, Nextcloud
    # glossaries): Malay, Baltic, Finnic, South Slavic, Albanian, Turkic, Celtic, Iberian,
    # Bantu, Afrikaans, Greek, Central Asian; "jeton"/"gettone" are French, Romanian,
    # Turkish and Italian for a token; Latin, Kabyle and Sardinian for a code (Faroese
    # compounds: CODE_SUFFIX)
    r"kata laluan", r"slaptažod\w*", r"parol\w*", r"parool\w*", r"salasõna\w*", r"лозинк\w*",
    r"fjal[eë]kalim\w*", r"[şs]ifr\w*", r"lykilorð\w*", r"p?h?asfhocal\w*", r"cyfrinair",
    r"pasahitz\w*", r"contrasinal", r"contrasenya", r"nenosiri", r"wagwoord\w*", r"jeton\w*",
    r"gettone", r"διακριτικ\w*", r"құпия сөз\w*", r"нууц үг\w*", r"сыр сөз\w*", r"рамз\w*",
    r"codic\w*", r"codex", r"tangalt\w*", r"còdighe",
    # A token in Catalan, Galician, Estonian, Irish, Icelandic, Lithuanian, Latvian,
    # Norwegian; Vietnamese "mã thông báo" (a token) and "mã của bạn" (your code)
    r"testimoni", r"testemu[ñn]o", r"tõend\w*", r"c?h?omhartha\w*", r"teikn\w*", r"rakt[aą]s?",
    r"marķier\w*", r"sjetong\w*", r"m[aã] th[oô]ng b[aá]o", r"m[aã] c[uủ]a b[aạ]n",
    r"belirte[cç]\w*",  # a token (Turkish)
)  # fmt: skip

CODE_SUFFIX: tuple[str, ...] = (
    r"code[sn]?", r"kode[nr]?", r"koade", r"kod", r"kodo\w*", r"kód\w*", r"kóð\w*",
    r"koodi\w*", r"kood\w*", r"arkot[au]",
    r"passwort", r"kennwort", r"wachtwoord", r"lösenord", r"passord", r"salasana\w*",
)  # fmt: skip

NOT_CODE_PREFIX: tuple[str, ...] = (
    "en", "de", "uni", "geo", "op", "bar", "zip", "post", "postal", "qr", "promo", "rabatt",
    "rabat", "gutschein", "aktions", "kampanje", "kampagne", "gave", "presente", "gift",
    "discount", "coupon", "voucher", "source", "quell", "fehler", "error", "status", "short",
    "area", "country", "länder", "vorwahl", "tracking", "sendungs", "referral", "invite",
    "einladungs", "html", "tax", "steuer", "swift", "sort", "bank", "bankleit", "iban",
    "produkt", "product", "artikel", "farb", "color", "colour", "zeichen", "morse", "dress",
    "kunden", "pick", "pickup", "abhol", "rabattkod", "dörr", "tür", "door", "gate",
    "korting", "alennus", "soodus", "kampanja", "tarjous", "lahja", "kupon", "kupong", "pos",
)  # fmt: skip

QUALIFIER: tuple[str, ...] = (
    # English
    r"verif\w*", r"confirm\w*", r"auth\w*", r"security", r"secure", r"login", r"log[- ]?in",
    r"logon", r"sign[- ]?in", r"sign[- ]?up", r"one[- ]?time", r"single[- ]use", r"temporary",
    r"two[- ]factor", r"2[- ]step", r"two[- ]step", r"multi[- ]factor", r"access",
    r"activat\w*", r"registration", r"reset", r"recover\w*", r"validat\w*", r"identity",
    r"approv\w*",
    # German, Dutch, Scandinavian, Finnish
    r"bestätig\w*", r"best[aä]tig\w*", r"sicherheit\w*", r"anmeld\w*", r"einmal\w*",
    r"verifizier\w*", r"freigabe\w*", r"bevestig\w*", r"inlog\w*", r"beveilig\w*",
    r"eenmalig\w*", r"bekr[aä]ft\w*", r"bekreft\w*", r"verifier\w*", r"engångs\w*",
    r"engangs\w*", r"vahvist\w*", r"kertakäyttö\w*", r"tunnist\w*",
    # Romance
    r"vérif\w*", r"sécurité", r"connexion", r"réinitialis\w*", r"restablec\w*", r"reimpost\w*",
    r"redefini\w*", r"zurücksetz\w*", r"usage unique", r"validation",
    r"verificaci\w*", r"verificac\w*", r"verifica\w*", r"confirmaci\w*", r"seguridad",
    r"acceso", r"un solo uso", r"activaci\w*", r"sicurezza", r"accesso", r"conferma\w*",
    r"segurança", r"seguranca", r"acesso", r"confirmação", r"confirmacao", r"ativação",
    r"autentica\w*", r"autoriza\w*", r"autoriza\w*", r"firma", r"securitate", r"confirmare",
    # Slavic, Baltic, Hungarian, Turkic, Indonesian, Tagalog
    r"weryfik\w*", r"potwierdz\w*", r"jednorazow\w*", r"logowan\w*", r"autoryz\w*",
    r"ověř\w*", r"overov\w*", r"potvr\w*", r"potrdi\w*", r"potrditv\w*", r"prijav\w*",
    r"verifik\w*", r"jednokratn\w*", r"enkratn\w*", r"parbaud\w*", r"pārbaud\w*",
    r"patvirtin\w*", r"ellenőr\w*", r"ellenor\w*", r"megerősít\w*",
    r"do[gğ]rulama\w*", r"onay\w*", r"tek kullan\w*", r"tasdiq\w*", r"tasdiqlash\w*",
    r"pamberipikasyon\w*", r"prihlasovac\w*", r"přihlašovac\w*",
    r"подтвержд\w*", r"підтвердж\w*", r"проверочн\w*", r"одноразов\w*", r"сеансов\w*",
    r"вход\w*", r"авторизац\w*", r"верификац\w*", r"активац\w*", r"безопасн\w*",
    r"επιβεβαίωσ\w*", r"επαλήθευσ\w*", r"ασφαλείας", r"σύνδεσ\w*",
    r"x[aá]c (?:minh|th[uự]c|nh[aậ]n)", r"k[ií]ch ho[aạ]t",
    # Signing in, resetting, confirming, in more languages (stems; accents need not be written)
    r"giri[sş]\w*", r"kirish\w*", r"bejelentkez\w*", r"belép\w*", r"pieteik\w*",
    r"prisijung\w*", r"sisselogi\w*", r"saio-hasier\w*", r"inici de sessió", r"aanmeld\w*",
    r"koneksyon", r"masuk", r"innlogg\w*", r"pålogg\w*", r"kirjaudu\w*", r"kirjautu\w*",
    r"conectare", r"prijav\w*", r"sesi[oó]n", r"sessão", r"sessione",
    r"reset\w*", r"obnoven\w*", r"obnov\w*", r"ponastavit\w*", r"nulstil\w*",
    r"tilbakestill\w*", r"återställ\w*", r"s[iı]f[iı]rla\w*", r"tiklash\w*", r"berrezar\w*",
    r"restabli\w*", r"visszaállít\w*", r"atiestat\w*", r"atkurt\w*", r"lähtesta\w*",
    r"resetar\w*", r"reinici\w*", r"ripristin\w*", r"egiazta\w*", r"kinnit\w*",
    r"apstiprin\w*", r"konfime\w*", r"bekræft\w*", r"vahvist\w*",
    r"кирүү\w*", r"нэвтр\w*", r"пријав\w*", r"войти", r"логин\w*", r"ресет\w*",
    r"сброс\w*", r"скида\w*", r"скину\w*", r"восстановл\w*", r"відновл\w*", r"потврд\w*",
    r"wiederherstell\w*", r"herstel\w*", r"gjenopprett\w*", r"gendannelse\w*",
    r"ырас\w*", r"дурусто\w*", r"баталгаажуул\w*", r"шинэчл\w*", r"επαναφορ\w*",
)  # fmt: skip

NOT_CODE_QUALIFIER: tuple[str, ...] = (
    r"tracking", r"track", r"old", r"previous", r"expired", r"promo\w*", r"discount",
    r"coupon", r"voucher", r"gift", r"postal", r"post", r"zip", r"booking", r"reservation",
    r"reference", r"ref", r"area", r"country", r"qr", r"bar", r"error", r"source", r"referral",
    r"invite", r"invitation", r"wi-?fi", r"wlan", r"wireless", r"network", r"product",
    r"swift", r"sort", r"tax", r"pickup", r"pick-up", r"sale", r"offer", r"door", r"gate",
    r"entry", r"parking", r"locker", r"dress", r"color", r"colour", r"claim", r"redeem",
    r"redemption", r"reward", r"prize", r"bonus", r"lottery", r"membership",
    r"identifier(?=[ -]?codes?(?![^\W\d_]))",  # ("identifier binding code" is a sign-in code)
    r"réduction", r"promotionnel", r"postal", r"descuento", r"cup[oó]n", r"regalo",
    r"sconto", r"postale", r"desconto", r"cupom", r"presente", r"korting", r"kortings",
    r"rabatt", r"rabat", r"kupon", r"zniżk\w*", r"pocztow\w*", r"скидк\w*", r"промо\w*",
    r"почтов\w*", r"indirim\w*", r"posta",
    # Discounts and coupons in more languages (accents need not be written)
    r"slev\w*", r"zľav\w*", r"zlav\w*", r"kedvezmény\w*", r"kupon\w*", r"alennus\w*",
    r"popust\w*", r"reducere", r"diskon", r"знижк\w*", r"купон\w*", r"εκπτωσ\w*",
    r"κουπόνι\w*", r"gi[aả]m gi[aá]", r"khuy[eế]n m[aã]i", r"rabattkod\w*", r"akci\w*",
    # Postal codes named after the word for code: Indonesian, Malay, Vietnamese, Swahili
    r"pos", r"b[uư]u (?:ch[ií]nh|đi[eệ]n)", r"ya posta",
    # an order's code (English, Indonesian, Malay), only right next to the word for code
    r"order(?=[ -]?codes?(?![^\W\d_]))", r"(?<=kode )pesanan", r"(?<=kod )pesanan",
    r"(?<=رمز )الطلب", r"(?<=كود )الطلب",  # (Arabic)
)  # fmt: skip

IDENTIFIER: tuple[str, ...] = (
    # English
    r"orders?", r"ord", r"ref", r"refs", r"reference", r"invoice", r"inv", r"account", r"acct",
    r"a/c", r"card", r"ending", r"ends", r"booking", r"reservation", r"ticket", r"case",
    r"tracking", r"track", r"shipment", r"parcel", r"package", r"consignment", r"awb",
    r"customer", r"member", r"membership", r"id", r"no", r"nr", r"num", r"number", r"tel",
    r"phone", r"telephone", r"mobile", r"cell", r"call", r"fax", r"text", r"reply", r"sms to",
    r"transaction", r"txn", r"trx", r"serial", r"model", r"version", r"policy",
    r"claim", r"loan", r"contract", r"iban", r"routing", r"receipt", r"bill", r"amount",
    r"total", r"price", r"balance", r"sum", r"room", r"flight", r"seat", r"suite", r"apt",
    r"street", r"st", r"ave", r"road", r"box", r"po", r"postcode", r"zip", r"extension",
    r"ext", r"employee", r"student", r"patient", r"passport", r"licen[cs]e", r"plate",
    r"isbn", r"sku", r"item", r"article", r"product", r"batch", r"lot", r"qty", r"quantity",
    r"hotline", r"helpline", r"contact", r"dial", r"to", r"at", r"payment", r"paid", r"spent",
    r"charged", r"limit", r"year", r"since", r"mtcn", r"meeting", r"webinar",
    # German, Dutch, Scandinavian
    r"bestell\w*", r"auftrag\w*", r"rechnung\w*", r"kund\w*", r"konto\w*", r"karte",
    r"\w*nummer", r"\w*nr", r"sendung\w*", r"buchung\w*", r"referenz", r"betrag", r"summe",
    r"vorgang\w*", r"aktenzeichen", r"telefon\w*", r"anruf\w*", r"rufen", r"factuur",
    r"rekening\w*", r"kaart", r"boeking\w*", r"bedrag", r"bel", r"zending", r"klant\w*",
    r"bestelling\w*", r"referentie", r"ordre", r"faktura", r"beløp", r"belopp",
    # Romance
    r"commande", r"facture", r"compte", r"carte", r"num[ée]ro", r"réf", r"référence",
    r"colis", r"réservation", r"montant", r"t[ée]l[ée]phone", r"tél", r"appel\w*",
    r"dossier", r"client", r"contrat", r"suivi", r"billet", r"pedido", r"factura",
    r"cuenta", r"tarjeta", r"n[uú]mero", r"referencia", r"reserva", r"importe", r"monto",
    r"tel[eé]fono", r"llam\w*", r"env[ií]o", r"seguimiento", r"cliente", r"expediente",
    r"ordine", r"fattura", r"conto", r"carta", r"riferimento", r"prenotazione", r"importo",
    r"chiama\w*", r"spedizione", r"pratica", r"fatura", r"conta", r"cart[aã]o",
    r"refer[eê]ncia", r"valor", r"telefone", r"ligue", r"encomenda", r"rastreio",
    r"protocolo", r"suma", r"contul", r"comanda", r"factura",
    # Slavic, Baltic, Hungarian, Turkic, Indonesian, Vietnamese
    r"zam[oó]wieni\w*", r"rachun\w*", r"kwot\w*", r"przesy[łl]k\w*", r"klient\w*", r"numer\w*",
    r"karta", r"karty", r"kart[eěyi]", r"objedn[aá]vk\w*", r"[uú][cč]et\w*", r"[cč][ií]slo",
    r"[cč][aá]stk\w*", r"z[aá]sielk\w*", r"naro[cč]il\w*", r"ra[cč]un\w*", r"kartic\w*",
    r"[sš]tevilk\w*", r"znesek", r"broj\w*", r"po[sš]iljk\w*", r"rendel[eé]s\w*", r"sz[aá]ml\w*",
    r"sipari[sş]\w*", r"hesab\w*", r"hesap\w*", r"kart\w*", r"numara\w*", r"tutar\w*",
    r"kargo", r"takip", r"m[uü][sş]teri\w*", r"referans", r"pesanan", r"faktur", r"rekening",
    r"kartu", r"nomor", r"jumlah", r"telepon", r"tagihan", r"resi",
    r"s[oố] đi[eệ]n tho[aạ]i", r"so dien thoai", r"sđt", r"sdt", r"li[eê]n h[eệ]", r"lh",
    r"t[oổ]ng đ[aà]i", r"tong dai", r"đ[oơ]n h[aà]ng", r"don hang",
    r"заказ\w*", r"сч[её]т\w*", r"карт\w*", r"номер\w*", r"телефон\w*", r"сумм\w*",
    r"плат[её]ж\w*", r"звон\w*", r"позвон\w*", r"договор\w*", r"посылк\w*", r"клиент\w*",
    r"рахун\w*", r"картк\w*", r"замовлен\w*", r"баланс\w*", r"доступно",
    # Orders, invoices, shipments in more languages
    r"narudžb\w*", r"porudžbin\w*", r"tilau\w*", r"bestilling\w*", r"beställning\w*",
    r"ordre\w*", r"lasku\w*", r"faktur\w*", r"παραγγελ\w*", r"τιμολ\w*", r"αριθμ\w*",
    r"lähetys\w*", r"seuranta\w*", r"zásilk\w*", r"pošiljk\w*", r"siuntos", r"užsakym\w*",
    r"pasūtījum\w*", r"tellimus\w*", r"enkomand\w*", r"eskaera\w*", r"comand\w*",
)  # fmt: skip

# Promotion words whose patterns look at their neighbours ("20% off", "save 30%").
PROMOTION_IN_CONTEXT = frozenset({"off", "save"})
PROMOTION: tuple[str, ...] = (
    r"(?<=[\d%/-] )off", r"(?<=[\d%])off", r"discount\w*", r"sale", r"saving\w*",
    r"save(?= (?:up ?to|\d|[$€£₹]))", r"deals?", r"offers?", r"promo\w*", r"coupons?",
    r"vouchers?", r"cashback", r"freebet", r"bonus", r"shop now", r"buy now",
    r"rabatt\w*", r"rabat", r"gutschein\w*", r"angebot\w*", r"réduction", r"remise", r"soldes",
    r"offre", r"descuento", r"oferta", r"rebaja\w*", r"sconto", r"offerta", r"desconto",
    r"promoção", r"korting", r"aanbieding", r"zniżk\w*", r"promocj\w*", r"скидк\w*",
    r"акци\w*", r"indirim\w*", r"kampanya\w*", r"f[iı]rsat\w*", r"tilbud", r"erbjudande",
    r"free", r"rewards?", r"t ?& ?c", r"checkout", r"exclusive", r"limited", r"prize", r"win",
    r"won", r"congratulations", r"gratis", r"kostenlos", r"gratuit\w*", r"lucky", r"winner",
    r"un-?redeemed", r"redeem\w*", r"claim", r"ringtones?", r"prizes?",
    r"jackpot",
    r"slev\w*", r"zľav\w*", r"kedvezmény\w*", r"kupon\w*", r"alennus\w*",
    r"popust\w*", r"reducere", r"diskon", r"знижк\w*", r"купон\w*", r"εκπτωσ\w*",
    r"gi[aả]m gi[aá]", r"khuy[eế]n m[aã]i", r"tarjous\w*", r"aanbod", r"oferta\w*",
    # Vietnamese, Indonesian, Malay, Filipino, Swahili: a price cut, an offer, a saving
    r"(?:đư[oợ]c|duoc) gi[aả]m", r"[uư]u đ[aã]i", r"ho[aà]n ti[eề]n", r"mi[eễ]n ph[ií]",
    r"hemat", r"potongan", r"diskaun", r"diskwento", r"punguzo",
)  # fmt: skip

MEETING: tuple[str, ...] = (
    r"meeting", r"webinar", r"conference call", r"teams meeting",
    r"besprechung", r"réunion", r"reunión", r"riunione", r"vergadering", r"spotkani\w*",
    r"встреч\w*", r"совещани\w*", r"конференци\w*", r"toplant\w*",
)  # fmt: skip

BOOKING: tuple[str, ...] = (
    r"booking", r"reservation", r"check-in", r"buchung", r"réservation", r"reserva",
    r"prenotazione", r"boeking", r"rezerwacj\w*", r"бронирован\w*", r"rezervasyon\w*",
    r"bestilling",
)  # fmt: skip

# "Enter 678901 to proceed": verbs asking the reader to type the number.
ENTRY_VERB: tuple[str, ...] = (
    r"enter", r"use", r"type", r"input", r"key in", r"entrez", r"saisissez", r"utilisez",
    r"ingresa", r"introduce", r"usa", r"inserisci", r"digita", r"digite", r"insira", r"gib",
    r"verwende", r"voer", r"gebruik", r"wpisz", r"użyj", r"введите", r"используйте", r"girin",
    r"kullanın", r"masukkan", r"gunakan", r"nhập", r"输入", r"輸入", r"入力",
)  # fmt: skip

CONNECTOR: tuple[str, ...] = (
    "is", "are", "was", "ist", "lautet", "lauten", "est", "es", "è", "e", "é", "és", "er", "är",
    "on", "je", "jest", "to", "là", "la", "ni", "adalah", "ay", "your", "you", "the", "a", "an",
    "my", "our", "this", "following", "here", "it", "its", "dein", "deine", "ihr", "ihre",
    "der", "die", "das", "votre", "ton", "ta", "le", "les", "tu", "su", "seu", "sua", "o",
    "il", "tuo", "tua", "uw", "jouw", "je", "de", "het", "twój", "twoj", "ваш", "ваша", "твой",
    "это", "din", "ditt", "oma", "new", "requested", "sent", "used", "for", "use", "enter",
    "anda", "kamu", "sizin", "senin", "por", "per", "para", "pour", "für", "voor", "na",
    "del", "di", "da", "do", "of", "van", "von", "und", "and", "below", "now",
)  # fmt: skip

CURRENCY: tuple[str, ...] = (
    r"usd", r"eur", r"euro?s?", r"gbp", r"jpy", r"cny", r"rmb", r"rub", r"руб\w*", r"р",
    r"uah", r"грн", r"pln", r"z[łl]", r"czk", r"k[čc]", r"huf", r"ft", r"try", r"tl", r"inr",
    r"rs", r"vnd", r"đ", r"dong", r"krw", r"won", r"idr", r"rp", r"myr", r"rm", r"sgd",
    r"thb", r"baht", r"brl", r"mxn", r"ars", r"cop", r"clp", r"sek", r"nok", r"dkk",
    r"kr", r"chf", r"aud", r"cad", r"nzd", r"hkd", r"twd", r"ntd", r"sar", r"aed", r"egp",
    r"irr", r"irt", r"ريال", r"تومان", r"ils", r"nis", r"lei", r"ron", r"bgn", r"лв",
    r"dollars?", r"cents?", r"yuan", r"yen", r"rupees?", r"pesos?", r"reais", r"lira",
)  # fmt: skip

CURRENCY_SYMBOLS = "$€£¥₹₽₩₪₫฿₺₴₱₦₵₲₡₸₼﷼¢"

UNIT: tuple[str, ...] = (
    r"kb", r"mb", r"gb", r"tb", r"km", r"kg", r"mi", r"miles", r"pts", r"points", r"punkte",
    r"points?", r"ms", r"mah", r"mhz", r"ghz", r"kwh", r"px", r"dpi", r"cc",
)  # fmt: skip

# Scripts without spaces, or with glued prefixes and particles: matched anywhere.
CODE_CJK: tuple[str, ...] = (
    # Chinese
    "验证码", "驗證碼", "校验码", "校驗碼", "动态码", "動態碼", "认证码", "認證碼", "激活码",
    "激活碼", "确认码", "確認碼", "安全码", "安全碼", "动态密码", "動態密碼", "授权码",
    "授權碼", "登录码", "登入碼", "短信码", "密码", "密碼", "口令", "验证代码", "識別碼",
    "识别码", "交易码", "交易碼", "随机码", "隨機碼", "令牌", "代码", "代碼",
    # Japanese
    "認証コード", "確認コード", "コード", "パスワード", "認証番号", "暗証番号", "確認番号",
    "ワンタイム", "承認番号", "認証キー", "トークン",
    # Korean
    "인증번호", "인증 번호", "인증코드", "코드", "비밀번호", "승인번호", "확인번호", "보안코드",
    "일회용", "토큰",
    # Thai, Hebrew, Arabic, Persian, Urdu, Hindi, Bengali, others
    "รหัส", "โค้ด", "קוד", "סיסמ", "رمز", "كود", "كلمة المرور", "كلمة السر", "گذرواژه",
    "کوڈ", "कोड", "ओटीपी", "पासवर्ड", "কোড", "ওটিপি", "குறியீ", "కోడ్", "კოდ", "կոդ",
    # Kannada, Malayalam, Gujarati, Punjabi, Sinhala, Khmer, Lao, Burmese, Amharic, Pashto;
    "ಕೋಡ್", "കോഡ്", "કોડ", "ਕੋਡ", "කේත", "កូដ", "ລະຫັດ", "ကုဒ်", "ኮድ", "کوډ",
    # Kurdish (Sorani) for a code, with its suffixes glued on (کۆدی, کۆدە)
    "کۆد",
    # Odia, Sindhi, Assamese for a code; tokens and passwords in Indic, Arabic-script,
    # Hebrew, Thai, Caucasian and South-East Asian scripts
    "କୋଡ", "ڪوڊ", "ক'ড", "ক’ড", "टोकन", "টোকেন", "توکن", "ٹوکن", "אסימון", "โทเค็น",
    "პაროლ", "գաղտնաբառ", "ពាក្យសម្ងាត់", "கடவுச்சொல்", "పాస్‌వర్డ్", "పాస్వర్డ్",
    "پاس ورڈ", "পাসওয়ার্ড", "پټنوم", "संकेतशब्द", "પાસવર્ડ", "ਪਾਸਵਰਡ", "මුරපද", "စကားဝှက်",
    "የይለፍ ቃል", "ტოკენ", "ටෝකන",
    # a verification number (Amharic)
    "ማረጋገጫ ቁጥር",
)  # fmt: skip

# Persian "کد" is two letters and sits inside longer words: needs its own boundaries.
CODE_PERSIAN = r"(?<![\u0600-\u06FF])کد(?![\u0600-\u06FF])"

QUALIFIER_CJK: tuple[str, ...] = (
    "验证", "驗證", "认证", "認證", "登录", "登入", "登錄", "确认", "確認", "校验", "动态",
    "認証", "ログイン", "ワンタイム", "인증", "확인", "로그인", "본인", "ยืนยัน", "אימות",
    "כניסה", "חד פעמי", "تأكيد", "تحقق", "التحقق", "تایید", "تأیید", "ورود", "सत्यापन",
    "लॉगिन", "重置", "重設", "再設定", "リセット", "초기화", "재설정", "ลงชื่อเข้าใช้",
    "เข้าสู่ระบบ", "รีเซ็ต", "تسجيل الدخول", "إعادة تعيين", "بازنشانی", "איפוס", "התחברות",
    "შესვლ", "აღდგენ", "დასტურ", "रीसेट",
    # Khmer, Lao, Burmese, Bengali, Tamil, Urdu, Amharic, Sorani: verify, confirm, sign in
    "ផ្ទៀងផ្ទាត់", "បញ្ជាក់", "ចូលប្រព័ន្ធ", "ຢືນຢັນ", "ກວດສອບ", "ເຂົ້າສູ່ລະບົບ", "အတည်ပြု",
    "အကောင့်ဝင်", "যাচাই", "প্রমাণীকরণ", "লগইন", "சரிபார்ப்பு", "உள்நுழை", "تصدیق", "لاگ ان",
    "ማረጋገጫ", "چونەژوورەوە",
)  # fmt: skip

NOT_CODE_QUALIFIER_CJK: tuple[str, ...] = (
    "取件", "取货", "取貨", "提货", "兑换", "兌換", "邀请", "邀請", "优惠", "優惠", "邮政",
    "郵政", "邮编", "推荐", "推薦", "礼品", "禮品", "クーポン", "招待", "郵便", "할인", "쿠폰",
    "우편", "초대", "קופון", "הנחה", "خصم", "تخفیف", "कूपन",
    # postal (Persian, Sorani, Arabic, Thai, Hindi) and a postal code (Hebrew)
    "پستی", "پۆست", "البريدي", "بريدي", "ไปรษณีย์", "डाक", "מיקוד",
    # a coupon (Bengali)
    "কুপন",
)  # fmt: skip

IDENTIFIER_CJK: tuple[str, ...] = (
    "订单", "訂單", "单号", "單號", "编号", "編號", "尾号", "尾號", "卡号", "卡號", "账号",
    "帳號", "账户", "帳戶", "手机号", "手機號", "电话", "電話", "号码", "號碼", "客服", "金额",
    "金額", "余额", "餘額", "快递", "運單", "运单", "会议", "會議", "房间", "注文", "口座",
    "カード", "番号", "残高", "お問い合わせ", "予約", "주문", "계좌", "카드", "전화", "번호",
    "금액", "잔액", "고객센터", "예약", "회의", "הזמנה", "חשבון", "כרטיס", "טלפון", "מספר",
    "סכום", "طلب", "فاتورة", "حساب", "بطاقة", "هاتف", "رقم", "مبلغ", "سفارش", "فاکتور",
    "کارت", "تلفن", "شماره", "ऑर्डर", "खाता", "कार्ड", "फोन", "नंबर", "राशि", "หมายเลข",
    "บัญชี", "โทร", "ยอด", "คำสั่งซื้อ", "追跡", "配送", "発送", "物流", "快遞", "請求書",
    "발송", "배송", "운송장", "송장", "חשבונית", "משלוח", "شحنة", "الشحن", "مرسوله",
)  # fmt: skip

PROMOTION_CJK: tuple[str, ...] = (
    "优惠", "優惠", "折扣", "促销", "促銷", "特价", "特價", "割引", "セール", "할인", "쿠폰",
    "הנחה", "خصم", "تخفیف", "छूट", "ส่วนลด", "クーポン", "쿠폰", "优惠券", "優惠券", "折价", "满减",
    "コード割引", "кешбэк", "кэшбэк",
    # discounts and offers in Indic, Arabic-script, Ethiopic and South-East Asian scripts
    "प्रोमो", "कैशबैक", "ছাড়", "অফার", "தள்ளுபடி", "رعایت", "كوبون", "ቅናሽ", "បញ្ចុះតម្លៃ",
    "ສ່ວນຫຼຸດ", "လျှော့စျေး", "কুপন",
)  # fmt: skip

MEETING_CJK: tuple[str, ...] = ("会议", "會議", "会議", "회의", "פגישה", "اجتماع", "جلسه")

BOOKING_CJK: tuple[str, ...] = (
    "预订", "預訂", "预约", "預約", "予約", "예약", "הזמנת", "حجز", "رزرو",
)  # fmt: skip

CONNECTOR_CJK = "是为為は가이은는：:（）()「」『』【】[]〔〕《》<>\"'“”‘’«»"

# Words that follow "code:" or "code is" without being a code.
NOT_A_CODE_WORD: frozenset[str] = frozenset(
    {
        "below", "above", "here", "valid", "invalid", "expired", "incorrect", "wrong", "sent",
        "required", "needed", "attached", "ready", "active", "used", "correct", "only", "for",
        "the", "your", "not", "this", "that", "shown", "listed", "following", "follows",
        "approved", "pending", "complete", "completed", "confirmed", "verified", "success",
        "successful", "failed", "denied", "declined", "unten", "oben", "gültig", "abgelaufen",
        "falsch", "dessous", "valide", "abajo", "válido", "valido", "sotto", "hieronder",
        "geldig", "ponizej", "poniżej", "ниже", "expires", "expire", "will", "has", "have",
        "cannot", "can", "must", "should", "please", "enter", "use", "copy", "paste", "click",
        "tap", "open", "visit", "go", "never", "do", "dont", "don", "share", "keep", "secret",
        "private", "confidential", "unique", "personal", "important", "thanks",
        "thank", "hello", "dear", "none", "null", "true", "false", "yes", "team", "support",
        "help", "stop", "info", "more", "link", "button", "email", "mail", "phone", "number",
        "account", "login", "password", "code", "verification", "security", "apply", "rates",
        "msg", "data", "reply", "welcome", "again", "soon", "later", "today", "tomorrow",
        "minutes", "hours", "seconds", "time", "once", "within", "after", "before", "until",
        "otp", "pin", "app", "web", "site", "online", "mobile", "device", "browser", "window",
        "sms", "text", "message", "notification", "alert", "request", "requested", "attempt",
    }
)  # fmt: skip


# --- accents ------------------------------------------------------------------------------


def _fold_table() -> dict[int, str]:
    """Latin letters with accents, each to its letter without (``é`` to ``e``, ``ş`` to ``s``).

    One character to one, so positions stay; letters with no decomposition
    (``ß``, ``ø``, ``ł``, ``đ``, Turkish dotless i) stay as they are.
    """
    table = {}
    for cp in chain(range(0xC0, 0x250), range(0x1E00, 0x1F00)):
        parts = unicodedata.normalize("NFKD", chr(cp))
        bare = "".join(c for c in parts if not unicodedata.combining(c))
        if len(bare) == 1 and bare != chr(cp) and bare.isascii() and bare.isalpha():
            table[cp] = bare
    return table


FOLD = _fold_table()


def fold(text: str) -> str:
    """``text`` with the accents of its Latin letters dropped (same length).

    The words of the roles are matched against the folded lower-case message,
    and are folded the same way: "kod" finds "kód", "kòd" and "kôd", "giris"
    finds "giriş", whether or not the message or the list wrote the accent.
    """
    return text.translate(FOLD)


def _folded(patterns: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(fold(p) for p in patterns))


CODE, CODE_SUFFIX, NOT_CODE_PREFIX, QUALIFIER, NOT_CODE_QUALIFIER = map(
    _folded, (CODE, CODE_SUFFIX, NOT_CODE_PREFIX, QUALIFIER, NOT_CODE_QUALIFIER)
)
IDENTIFIER, PROMOTION, MEETING, BOOKING, ENTRY_VERB = map(
    _folded, (IDENTIFIER, PROMOTION, MEETING, BOOKING, ENTRY_VERB)
)


# --- compiled matchers --------------------------------------------------------------------

LETTER = r"[^\W\d_]"
# A word's edges: Chinese, Japanese and Korean letters end a word of another script
# ("あなたのOTPは123456です", "您的code是"), as spaces do.
_BOUNDED_LETTER = r"[^\W\d_\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f]"
NOT_AFTER_LETTER = rf"(?<!{_BOUNDED_LETTER})"
NOT_BEFORE_LETTER = rf"(?!{_BOUNDED_LETTER})"
_QUANTIFIERS = ("?", "*", "+", "{")


def _alternation(patterns: tuple[str, ...], letter: str = LETTER) -> str:
    return "|".join(p.replace(r"\w*", f"{letter}*") for p in patterns)


def _anywhere(words: tuple[str, ...]) -> str:
    return "|".join(map(re.escape, sorted(words, key=len, reverse=True)))


def _grouped(patterns: list[str], letter: str = LETTER, any_start: bool = True) -> str:
    """``"|".join(patterns)`` grouped by first letter, so that a word tries one group.

    The first alternative that matches counts, so order is kept where it can
    matter: alternatives starting with different letters never match at the same
    place, and each letter's group keeps the given order ("[şs]ifre" is "şifre"
    and "sifre", "(?<=20% )off" is "o(?<=20% o)ff", each in place). One that may
    start with any letter ("\\w*nr") ends the groups before it, or is left out.
    """
    parts: list[str] = []
    groups: dict[str, list[str]] = {}
    for p in [*patterns, None]:
        p = p and p.replace(r"\w*", f"{letter}*")
        lead = p and re.fullmatch(r"\[([^\W\d_]+)\]([^?*+{].*)", p)
        behind = p and re.fullmatch(r"(\(\?<=[^()]*)\)([^\W\d_])(.*)", p)
        if p and p[0].isalnum() and p[1:2] not in _QUANTIFIERS:
            groups.setdefault(p[0], []).append(p[1:])
        elif lead:
            for first in lead.group(1):
                groups.setdefault(first, []).append(lead.group(2))
        elif behind:  # the look-behind moves past the letter
            first, look, rest = behind.group(2), behind.group(1), behind.group(3)
            groups.setdefault(first, []).append(f"{look}{first}){rest}")
        elif p is None or any_start:
            parts += [f"{c}(?:{'|'.join(f'(?:{a})' for a in alts)})" for c, alts in groups.items()]
            parts += [f"(?:{p})"] if p else []
            groups = {}
    return "|".join(parts)


# The roles of MessageIndex, and their words in spaced and in unspaced scripts.
ROLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "code": (CODE, CODE_CJK),
    "qualifier": (QUALIFIER, QUALIFIER_CJK),
    "not_code": (NOT_CODE_QUALIFIER, NOT_CODE_QUALIFIER_CJK),
    "identifier": (IDENTIFIER, IDENTIFIER_CJK),
    "promotion": (PROMOTION, PROMOTION_CJK),
    "meeting": (MEETING, MEETING_CJK),
    "booking": (BOOKING, BOOKING_CJK),
}
ROLE_NAMES = tuple(ROLES)


def _words(patterns: list[str], letter: str = LETTER, any_start: bool = True) -> str:
    """All words in one alternation, tried as always: letter first, then "2fa"..."""
    lettered = [p for p in patterns if p[0].isalpha() and p[1:2] not in _QUANTIFIERS]
    return _grouped(lettered + [p for p in patterns if p not in lettered], letter, any_start)


def _roles_pattern(roles: list[list[str]], letter: str) -> re.Pattern[str]:
    """Group ``i`` ends where the word there ends if it plays role ``i`` (each role's
    words tried in order at the word's place, so that look-arounds still see)."""
    return re.compile("".join(f"(?:(?=((?:{_grouped(w, letter)})(?!{letter})))|)" for w in roles))


WORD_RE = re.compile(
    f"{NOT_AFTER_LETTER}(?:{_words([p for w, _ in ROLES.values() for p in w])}){NOT_BEFORE_LETTER}"
)
ROLE_RE = _roles_pattern([list(w) for w, _ in ROLES.values()], LETTER)


def _one_run(pattern: str) -> bool:
    """Whether ``pattern`` reads one run of letters and nothing around it."""
    rest = re.sub(r"\\w|\(\?:|[\[\]()?*+|]", "", pattern)
    return rest.isalpha() and "(?" not in pattern.replace("(?:", "")


def _matches_ascii(items: Any) -> bool:
    """False only when every string the parsed pattern matches has a non-ASCII character."""
    for op, arg in items:
        name = str(op)
        ok = (
            arg < 128 if name == "LITERAL"
            else any(str(o) not in ("LITERAL", "RANGE") or (a[0] if str(o) == "RANGE" else a) < 128
                     for o, a in arg) if name == "IN"  # a class lists an ASCII character
            else any(map(_matches_ascii, arg[1])) if name == "BRANCH"
            else _matches_ascii(arg[-1]) if name == "SUBPATTERN"
            else arg[0] == 0 or _matches_ascii(arg[2]) if name.endswith("REPEAT")
            else True  # anchors and look-arounds: they may pass
        )  # fmt: skip
        if not ok:
            return False
    return True


def _ascii(patterns: tuple[str, ...]) -> list[str]:
    return [p for p in patterns if _matches_ascii(sre_parse.parse(p))]


def _strings(items: Any, limit: int) -> set[str] | None:
    """The strings a parsed pattern matches, cut to ``limit`` characters (None: too
    many). Look-arounds are skipped, which only adds strings."""
    out = {""}
    for op, arg in items:
        name, choices = str(op), None
        if name in ("AT", "ASSERT", "ASSERT_NOT") or min(map(len, out)) >= limit:
            continue
        if name == "LITERAL":
            choices = {chr(arg)}
        elif name == "IN" and all(str(o) == "LITERAL" for o, _ in arg):
            choices = {chr(a) for _, a in arg}
        elif name == "SUBPATTERN":
            choices = _strings(arg[-1], limit)
        elif name == "BRANCH":
            branches = [_strings(alt, limit) for alt in arg[1]]
            choices = None if None in branches else set().union(*branches)  # type: ignore[arg-type]
        elif name == "MAX_REPEAT" and arg[1] == 1:  # "s?", "[- ]?"
            choices = _strings(arg[2], limit)
            choices = None if choices is None else choices | {""}
        if choices is None:
            return None
        out = {(a + b)[:limit] for a in out for b in choices}
    return out


def _fixed_roles() -> dict[str, tuple[str, ...]]:
    """The roles of each listed word that plays them wherever it stands.

    A word is judged at its place as an alternative reading past it ("sign in",
    "(?<=20% )off") could match there first; those no such alternative could start
    with (checked on three letters) play the roles this table says everywhere.
    """
    words: set[str] = set()
    heads: set[str] = set()
    for patterns, _ in ROLES.values():
        for p in patterns:
            parsed = sre_parse.parse(p)
            if _one_run(p):
                words |= {w for w in _strings(parsed, 40) or () if w.isalpha() and len(w) < 40}
            else:
                first = _strings(parsed, 3)
                if first is None:
                    return {}  # cannot tell what it starts with: judge every word in place
                heads |= first

    def fixed(w: str) -> bool:
        if len(w) >= 3:
            return w[:3] not in heads
        return not any(h.startswith(w) and not h[len(w) :][:1].isalpha() for h in heads)

    table = {}
    for w in sorted(words):
        if fixed(w) and w not in PROMOTION_IN_CONTEXT:
            spans = ROLE_RE.match(w + "\n").regs  # type: ignore[union-attr]
            table[w] = tuple(
                r for r, s in zip(ROLE_NAMES, spans[1:], strict=True) if s[1] == len(w)
            )
    return table


FIXED_ROLES = _fixed_roles()

# Lower-cased text with only ASCII letters (most mail) is read by patterns that
# find there what the general ones find, faster: [a-z] for a letter, a word found
# after the character before it (which the engine skips to) and, in the short
# one, no "\w*nr" (slow) for text without "nr". Words that are only ever
# identifiers (most words found; no other word can be found there) are left out:
# they count just before a candidate, where MessageIndex looks for them.
ASCII_ROLE_RE = _roles_pattern([_ascii(w) for w, _ in ROLES.values()], "[a-z]")
_ONLY_IDENTIFIER = {
    p: ws
    for p in _ascii(IDENTIFIER)
    if (ws := _strings(sre_parse.parse(p), 40))
    and {FIXED_ROLES.get(w) for w in ws} == {("identifier",)}
}
ONLY_IDENTIFIERS = frozenset(w for ws in _ONLY_IDENTIFIER.values() for w in ws)
_FOUND = [
    p
    for r, (ws, _) in ROLES.items()
    for p in _ascii(ws)
    if r != "identifier" or p not in _ONLY_IDENTIFIER
]
ASCII_WORDS, ASCII_WORDS_SHORT = (
    re.compile(f"[^a-z]({_words(_FOUND, '[a-z]', any_start)})(?![a-z])")
    for any_start in (True, False)
)
ASCII_WORD_ENDINGS = tuple(  # "" (always in the text) for one that is not "\w*" and letters
    p[3:] if p.startswith(r"\w*") and p[3:].isalpha() else ""
    for p in _FOUND
    if not _grouped([p], "[a-z]", any_start=False)
)
COMPOUND_CODE_RE = re.compile(f"(?:{_alternation(CODE_SUFFIX)}){NOT_BEFORE_LETTER}")
# A qualifier at the head of a compound code word ("bekræftelseskode", "Anmeldecode").
QUALIFIER_IN_WORD_RE = re.compile(_alternation(QUALIFIER))
UNSPACED_RE = re.compile(
    _anywhere(tuple({w for _, cjk in ROLES.values() for w in cjk})) + f"|{CODE_PERSIAN}"
)


def _unspaced_roles() -> dict[str, frozenset[str]]:
    """Roles of each unspaced entry, with those of the entries inside it (验证码 has 验证's)."""
    pairs = [(w, role) for role, (_, cjk) in ROLES.items() for w in cjk]
    return {w: frozenset(role for inner, role in pairs if inner in w) for w, _ in pairs}


UNSPACED_ROLES = _unspaced_roles()
NOT_SPACED = re.compile(r"[^\x00-\u024f\u0370-\u03ff\u0400-\u04ff\u1e00-\u1eff\u2000-\u206f]")
PERCENT_RE = re.compile(r"\d\s?%")
ENTRY_VERB_RE = re.compile(f"{NOT_AFTER_LETTER}(?:{_alternation(ENTRY_VERB)})\\s*$")
CONNECTOR_WORDS = frozenset(CONNECTOR)
CONNECTOR_CJK_RE = re.compile(
    _anywhere(("คือ", "הוא", "היא", "שלך", "שלכם", "هو", "الخاص بك", "لك", "شما", "است", "है",
               "आपका", "είναι", "σας", "σου", "ваш", "ваша",
               # "is" and "your" in Khmer, Lao, Burmese, Thai, Bengali, Tamil, Urdu, Amharic
               "គឺ", "របស់អ្នក", "ແມ່ນ", "ຂອງທ່ານ", "သင့်", "ဖြစ်သည်", "ของคุณ", "আপনার",
               "உங்கள்", "آپ کا", "ہے", "የእርስዎ", "ነው"))
    + f"|[{re.escape(CONNECTOR_CJK)}]"
)  # fmt: skip

# Amounts and quantities: a currency or unit just before or after a number.
AMOUNT_BEFORE_RE = re.compile(
    f"(?:[{CURRENCY_SYMBOLS}]|{NOT_AFTER_LETTER}(?:{_alternation(CURRENCY)})\\.?) ?$", re.I
)
AMOUNT_AFTER_RE = re.compile(
    f" ?(?:[{CURRENCY_SYMBOLS}%‰°]|(?:{_alternation(CURRENCY)}|{_alternation(UNIT)})"
    f"{NOT_BEFORE_LETTER}|[年月日時时分秒元円원块塊個个号號圆])",
    re.I,
)
# The same words for ASCII text, spelled out: what those patterns find there.
ASCII_CURRENCY, ASCII_AMOUNT_AFTER = (
    frozenset(w for p in _ascii(words) for w in _strings(sre_parse.parse(p), 99) or ())
    for words in (CURRENCY, CURRENCY + UNIT)
)


def is_amount(before: str, after: str) -> bool:
    """Whether a currency or unit stands right before or after a number (one space allowed)."""
    if not (before.isascii() and after.isascii()):
        return bool(AMOUNT_BEFORE_RE.search(before) or AMOUNT_AFTER_RE.match(after))
    # As the patterns: "$" or a currency word (all the letters there, "." may follow;
    # "$" matches before a final "\n") before, "$", "%", a currency or unit after.
    tail = before.removesuffix("\n").removesuffix(" ")
    word = tail.removesuffix(".")
    word = word[len(word.rstrip(ASCII_LETTERS)) :]
    if tail.endswith("$") or (word and word.lower() in ASCII_CURRENCY):
        return True
    head = after.removeprefix(" ")
    word = head[: len(head) - len(head.lstrip(ASCII_LETTERS))]
    return head[:1] in ("$", "%") or (bool(word) and word.lower() in ASCII_AMOUNT_AFTER)


YEAR_CONTEXT_RE = re.compile(
    r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b|©|copyright|\(c\)", re.I
)

# Ends of clauses: [.!?;] before white space, the full-width ones, line breaks.
BREAK_RE = re.compile(r"[.!?;。！？；\n](?:(?<=[。！？；\n])|(?=\s|$))")
# Around a candidate: weak identifiers, a label ending what follows it ("482913;
# Amount: ..."), punctuation ending a clause, what may share a lone code's line.
WEAK_IDENTIFIERS = frozenset({"to", "at", "from", "since", "payment", "paid", "year", "no"})
# "Text STOP to 85069", "send the password MIX to 85069": a number to send a message to.
SEND_TO_RE = re.compile(
    r"(?<![^\W\d_])(?:text|txt|send|reply|sms|msg|message)(?![^\W\d_])[^.!?\n]{0,40}$", re.I
)
RIGHT_LABEL = re.compile(r"[^\W\d_][:：]")
CLAUSE_PUNCT = re.compile(r"[,;()\[\]、]")
RULE_CHARS = " \t-=_*~.·•─━═—–"  # a line of only these is a rule drawn between parts of a mail
LINE_TRIM = " \t[](){}<>【】「」『』〔〕«»\"'*:：.,!-–—|#"
# Grammar around a code: "Code: 1234", "Ihr Code lautet 1234", "1234 to sign in".
COPULA_RE = re.compile(r"(?:is|ist|est|es|är|er|je|lautet)(?![^\W\d_])|[是为為は:：]", re.I)
COPULA_END_RE = re.compile(
    r"(?:(?<![^\W\d_])(?:is|are|ist|lautet|est|es|är|er|je|jest|è|é|là|la|adalah|ay)"
    r"|[是为為は=:：])\s*[:：]?\s*$",
    re.I,
)
# The only words allowed between a code word and an all-letter code, and after it.
LETTER_CODE_LEFT_RE = re.compile(
    r"[\s:：=(\[【「\"'“-]*(?:(?:is|ist|est|es|är|er|je|lautet|是|为|為|は)(?![^\W\d_])"
    r"[\s:：]*)?",
    re.I,
)
LETTER_CODE_RIGHT_RE = re.compile(r"\s*(?:is (?:the|your)|[:：-])\s*", re.I)
PURPOSE_RE = re.compile(  # between a number and the qualifier naming its purpose
    r"\s*(?:to|pour|para|per|um|zum|zur|om|aby|чтобы|для|için|icin|untuk|以|で|을|를)\s*$", re.I
)
PURPOSE_AFTER_RE = re.compile(r"\s+(?:to|pour|para|per|um|zum|om|aby|чтобы|для)\s+[^\W\d_]", re.I)
KEYWORD_DASH_RE = re.compile(r"(?<![A-Za-z])(?:otp|code|pin|tan|kod)-$", re.I)
# "OTP=482913 (Ref=KXTZ)", as banks write it: a code word set equal to the code, outside a
# link's query (links are blanked before reading; "&code=" or "?otp=" stays glued)
KEYWORD_EQUALS_RE = re.compile(r"(?<![\w&?/=.-])(?:otp|code|pin|tan|kod|passcode) ?=$", re.I)

# Pieces one of SECRECY_RE's phrases holds: text with none of them is not searched.
SECRECY_KEYS = (
    "never", "not ", "n't", "dont", "никому", "нікому", "nikomu", "nikoly", "no ", "nunca",
    "ne ", "nicht", "niemals", "non ", "nao ", "não ", "nie ", "kimseyle", "jangan", "khong",
    "请勿", "切勿", "不要", "請勿", "ないで",
)  # fmt: skip

# "Do not share it with anyone: 24808", "NEVER share this code, not even with our staff
# 699486": a warning to keep what follows secret, the way banks word their one-time
# codes (matched against the folded lower-case message, so written without accents).
SECRECY_RE = re.compile(
    r"(?<![^\W\d_])(?:"
    r"(?:never|do not|don'?t|please do not) (?:share|disclose|tell|reveal|give|forward)"
    r"|никому не (?:сообщайте|говорите|передавайте|показывайте|называйте)"
    r"|не (?:сообщайте|говорите|передавайте|называйте) (?:[^\W\d_]+ )?никому"
    r"|нікому не (?:повідомляйте|кажіть|передавайте)"
    r"|не (?:повідомляйте|кажіть|передавайте) (?:[^\W\d_]+ )?нікому"
    r"|nikomu ne (?:soobs\w*|govorite|peredavajte|povidoml\w*)"
    r"|ne (?:soobs\w*|govorite|peredavajte) (?:[^\W\d_]+ )?nikomu"
    r"|nikoly ne povidoml\w*"
    r"|no (?:lo )?(?:compartas|comparta|compartir|reveles|divulgues)|nunca compartas"
    r"|ne (?:le |la )?(?:communiquez|partagez|divulguez)|ne jamais (?:communiquer|partager)"
    r"|nicht weiter(?:geben|gegeben)|niemals weiter\w*|non (?:condividere|comunicare|divulgare)"
    r"|n[aã]o (?:compartilhe|partilhe|divulgue|informe)|nunca (?:compartilhe|partilhe)"
    r"|nie (?:udostepniaj|podawaj|przekazuj|ujawniaj)|kimseyle paylasmay\w*"
    r"|jangan (?:berikan|bagikan|memberikan|beritahu\w*)|khong (?:chia se|cung cap|tiet lo)"
    r")(?![^\W\d_])"
    r"|请勿泄露|切勿泄露|请勿告知|切勿告知|不要告诉|請勿洩露|請勿洩漏|切勿洩露|請勿告知|教えないで|共有しないで"
)

"""Words that say what a link in a message does, in many languages, for ``links``.

The link extractor reads the text of a link (its anchor, or the words just
before a bare URL), the words around it and the subject, and asks of each
which of these roles its words play:

- ``SIGN_IN``: signing in ("sign in", "log in", "anmelden", "se connecter",
  "войти", "ログイン", "登录", "로그인", "تسجيل الدخول", "đăng nhập"...), and
  the magic link itself ("magic link", "sign-in link", "Anmeldelink").
- ``CONFIRM``: confirming an address or an account: verify, confirm,
  activate, validate ("bestätigen", "vérifier", "подтвердить", "確認",
  "验证", "인증", "تأكيد", "ยืนยัน"...).
- ``RESET``: choosing a new password or regaining access ("reset",
  "zurücksetzen", "réinitialiser", "восстановить", "再設定", "重置"...).
- ``APPROVE``: approving a device or a sign-in ("approve", "authorize",
  "yes, it was me", "genehmigen", "承認", "批准", "승인"...).
- ``DONE``: an action already done ("confirmed", "verified", "bestätigt",
  "подтверждён", "已验证"): a notice, not a request; read before ``CONFIRM``.
- ``CLICK``: the words that point at a link ("click", "tap", "klicken",
  "cliquez", "нажмите", "クリック", "点击"...): weak evidence on their own.
- ``SECRET``: what an authentication message is about (password, account,
  e-mail address, security, code) without naming an action.
- ``NOT_ACTION``: links that are never the answer: unsubscribe, preferences,
  privacy, terms, help, support, contact, "view in browser", app stores,
  social networks, "not you?", "deny", "report".
- ``COMMERCE``: orders, receipts, invoices, shipping, newsletters, offers:
  a message about these is not an authentication message.

Each role has two tuples of lower-case ``re`` patterns: ``*_WORDS`` for
spaced scripts, matched from the start of a word (so stems like ``verif``
cover "verify", "verifizieren", "vérifier", "verificar", "verifiëren"), and
``*_ANY`` for scripts written without spaces or with glued particles
(Chinese, Japanese, Thai, Korean, Arabic, Hebrew, Hindi), matched anywhere.
"""

from __future__ import annotations

import re

__all__ = ["ROLES", "role_pattern"]

SIGN_IN_WORDS: tuple[str, ...] = (
    # English
    r"sign(?:ing)?[ -]?in", r"log(?:ging)?[ -]?in", r"login", r"log[ -]?on", r"signin",
    r"magic[ -]?link", r"one[ -]click (?:sign|log)", r"access your account", r"continue to",
    # German, Dutch, Scandinavian, Finnish
    r"anmeld", r"einlogg", r"login-link", r"anmeldelink", r"inlogg", r"inloglink", r"aanmeld",
    r"logga in", r"log ind", r"logg inn", r"logg på", r"kirjaudu", r"kirjautu",
    # Romance
    r"se connecter", r"connectez", r"connexion", r"iniciar sesi[oó]n", r"inicia sesi[oó]n",
    r"acceder", r"accede", r"accedi", r"accesso", r"entrar", r"entre na", r"fazer login",
    r"iniciar a sess[aã]o", r"conectează", r"autentific",
    # Slavic, Baltic, Hungarian, Greek, Turkish
    r"zaloguj", r"logowan", r"přihlás", r"prihlás", r"prihlas", r"войти", r"вход(?![а-яё])",
    r"вой[дт]", r"увійти", r"вхід", r"увійд", r"giriş yap", r"oturum aç", r"bejelentkez",
    r"σύνδεση", r"συνδεθ", r"prisijung", r"pieslēg", r"prijav",
    # Indonesian, Malay, Vietnamese, Filipino
    r"masuk", r"log masuk", r"đăng nhập",
)  # fmt: skip
SIGN_IN_ANY: tuple[str, ...] = (
    r"ログイン", r"サインイン", r"登录", r"登入", r"登錄", r"로그인", r"تسجيل الدخول",
    r"تسجيل دخول", r"התחבר", r"כניסה", r"להתחבר", r"लॉग इन", r"साइन इन", r"लॉगिन",
    r"เข้าสู่ระบบ", r"ล็อกอิน", r"ورود", r"وارد شوید",
)  # fmt: skip

CONFIRM_WORDS: tuple[str, ...] = (
    # English and many Latin-script languages share these stems
    r"verif", r"confirm", r"activat", r"activate", r"validat", r"valide", r"validar", r"valida",
    # German, Dutch, Scandinavian, Finnish, Estonian
    r"bestätig", r"bestaetig", r"aktivier", r"freischalt", r"bevestig", r"activeer",
    r"activeren", r"bekräfta", r"bekraefta", r"verifiera", r"aktivera", r"bekræft", r"aktiver",
    r"bekreft", r"vahvist", r"aktivoi", r"kinnita",
    # Romance
    r"vérifi", r"activer", r"activez", r"confirmez", r"activar", r"activa", r"attiva",
    r"conferma", r"ativar", r"ative", r"confirme", r"verifique", r"confirmar", r"confirma",
    r"activeaz",
    # Slavic, Baltic, Hungarian, Greek, Turkish
    r"potwierd", r"weryfik", r"potvrz", r"overen", r"ověř", r"aktywuj", r"aktywac", r"potvrd",
    r"ověř", r"overi", r"ověřen", r"aktivovat", r"aktivuj", r"подтверд", r"підтверд",
    r"активир", r"активу", r"актив", r"верифи", r"провер", r"перевір", r"doğrula", r"onayla",
    r"aktifleştir", r"etkinleştir", r"megerősít", r"ellenőriz", r"aktivál", r"επιβεβαί",
    r"επαλήθευ", r"ενεργοποί", r"patvirtin", r"apstiprin", r"potrdi", r"potvrdi", r"verifik",
    r"потвърд", r"потврд", r"верифик", r"επιβεβαιώ", r"επαληθεύ", r"ενεργοποιή", r"kinnitage",
    # Indonesian, Malay, Vietnamese
    r"konfirmasi", r"verifikasi", r"aktifkan", r"sahkan", r"xác nhận", r"xác minh",
    r"kích hoạt", r"xác thực",
)  # fmt: skip
CONFIRM_ANY: tuple[str, ...] = (
    r"確認", r"認証", r"有効化", r"確定", r"验证", r"驗證", r"确认", r"激活", r"啟用", r"启用",
    r"認證", r"인증", r"확인", r"활성화", r"تأكيد", r"تحقق", r"التحقق", r"تفعيل", r"فعّل",
    r"تایید", r"تأیید", r"אימות", r"אמת את", r"לאמת", r"אמתו", r"אשר את", r"אשרו", r"אישור",
    r"הפעל", r"सत्यापित", r"सत्यापन", r"पुष्टि", r"सक्रिय", r"ยืนยัน", r"ตรวจสอบ",
    r"เปิดใช้งาน",
    # inside compounds ("E-Mail-Bestätigung", "Kontoaktivierung", "e-mailverificatie")
    r"bestätigung", r"aktivierung", r"verifizierung", r"bevestiging", r"verificatie",
    r"activering", r"verifiering", r"bekräftelse", r"aktivering", r"bekræftelse",
    r"bekreftelse", r"vahvistus", r"أكد", r"أكّد",
)  # fmt: skip

RESET_WORDS: tuple[str, ...] = (
    r"reset", r"new password", r"choose a password", r"set (?:a |your )?(?:new )?password",
    r"change (?:your |my )?password", r"recover", r"forgot", r"zurücksetz", r"neues passwort",
    r"passwort ändern", r"kennwort ändern", r"wiederherstell", r"opnieuw instellen", r"herstel",
    r"nieuw wachtwoord", r"återställ", r"nytt lösenord", r"nulstil", r"ny adgangskode",
    r"tilbakestill", r"nytt passord", r"palauta", r"uusi salasana", r"vaihda salasana",
    r"réinitialis", r"nouveau mot de passe", r"restablec", r"restaurar", r"nueva contraseña",
    r"reimposta", r"ripristin", r"nuova password", r"redefin", r"recuperar", r"nova senha",
    r"resetează", r"resetuj", r"zresetuj", r"nowe hasło", r"obnov", r"nové heslo", r"resetovat",
    r"сброс", r"сбрось", r"восстанов", r"новый пароль", r"скинути", r"скинь", r"відновити",
    r"новий пароль", r"sıfırla", r"yeni şifre", r"visszaállít", r"új jelszó", r"επαναφορ",
    r"atur ulang", r"setel ulang", r"kata sandi baru", r"đặt lại", r"khôi phục",
    r"mật khẩu mới",
    # "change my password" (a notice that it "was changed" is not matched)
    r"(?:changer|modifier) (?:le |votre |mon )?mot de passe",
    r"(?:cambiar|modificar) (?:la |tu |su |mi )?contraseña",
    r"(?:alterar|mudar|trocar) (?:a |sua |minha )?senha",
    r"cambia(?:re)? (?:la |tua |mia )?password", r"wachtwoord (?:wijzigen|veranderen)",
    r"wijzig (?:je |uw )?wachtwoord", r"ändra (?:ditt |mitt )?lösenord",
    r"skift (?:din |min )?adgangskode", r"endre (?:ditt |mitt )?passord", r"vaihda salasana",
    r"zmień hasło", r"zmienić hasło", r"změnit heslo", r"změňte heslo", r"zmeniť heslo",
    r"изменить пароль", r"сменить пароль", r"измените пароль", r"змінити пароль",
    r"şifre(?:ni|mi)? değiştir", r"jelszó módosítás", r"jelszavad? megváltoztat",
    r"ubah kata sandi", r"repor(?![a-z])", r"nolla", r"ponastav", r"resetiraj", r"resetare",
    r"zmień (?:swoje |twoje )?hasło", r"измен\w* (?:мой |свой |ваш )?парол",
    r"смен\w* (?:мой |свой |ваш )?парол", r"змін\w* (?:мій |свій |ваш )?парол",
    r"αλλαγή (?:του )?κωδικ", r"đổi mật khẩu", r"schimbă parola", r"schimba parola",
)  # fmt: skip
RESET_ANY: tuple[str, ...] = (
    r"パスワードを変更", r"修改密码", r"更改密码", r"修改密碼", r"更改密碼", r"비밀번호 변경",
    r"비밀번호를 변경", r"تغيير كلمة", r"إعادة ضبط", r"שינוי סיסמה", r"पासवर्ड बदल",
    r"เปลี่ยนรหัสผ่าน", r"リセット", r"再設定", r"重置", r"重設", r"重新设置", r"重新設定",
    r"재설정", r"초기화", r"إعادة تعيين", r"استعادة", r"بازنشانی", r"איפוס", r"לאפס", r"रीसेट",
    r"पुनः सेट", r"รีเซ็ต", r"ตั้งรหัสผ่านใหม่", r"新しいパスワード", r"新密码", r"新密碼",
    r"zurücksetzung", r"wiederherstellung", r"passwortzurücksetz", r"kennwortzurücksetz",
)  # fmt: skip

APPROVE_WORDS: tuple[str, ...] = (
    r"approve", r"authori[sz]e", r"allow (?:this|the) (?:device|sign|log)",
    r"yes,? (?:it was|it's|that was) me", r"this was me", r"it'?s me",
    r"trust (?:this )?device", r"genehmig", r"zulassen", r"autorisier", r"das war ich",
    r"goedkeur", r"dat was ik", r"godkänn", r"godkend", r"godkjenn", r"hyväksy", r"approuv",
    r"autoris", r"c'était moi", r"aprobar", r"aprueba", r"autorizar", r"autoriza", r"fui yo",
    r"approva", r"autorizza", r"aprovar", r"autorize", r"fui eu", r"zatwierdź", r"zezwól",
    r"to byłem ja", r"schválit", r"povolit", r"одобр", r"разреш", r"это был я", r"дозвол",
    r"схвал", r"izin ver", r"benim", r"jóváhagy", r"setujui", r"izinkan", r"phê duyệt",
    r"cho phép",
)  # fmt: skip
APPROVE_ANY: tuple[str, ...] = (
    r"承認", r"許可", r"批准", r"允许", r"允許", r"授权", r"授權", r"승인", r"허용", r"موافقة",
    r"الموافقة", r"السماح", r"אשר כניסה", r"अनुमोदन", r"अनुमति", r"อนุมัติ", r"อนุญาต",
)  # fmt: skip

DONE_WORDS: tuple[str, ...] = (
    r"confirmed", r"verified", r"activated", r"validated", r"approved", r"changed", r"updated",
    r"has been reset", r"was reset", r"bestätigt", r"verifiziert", r"aktiviert", r"geändert",
    r"freigeschaltet", r"confirmée?s?", r"vérifiée?s?", r"activée?s?", r"modifiée?s?",
    r"confirmad[oa]s?", r"verificad[oa]s?", r"activad[oa]s?", r"ativad[oa]s?", r"alterad[oa]s?",
    r"confermat[oa]", r"verificat[oa]", r"attivat[oa]", r"modificat[oa]", r"bevestigd",
    r"geverifieerd", r"geactiveerd", r"gewijzigd", r"bekräftad", r"verifierad", r"aktiverad",
    r"bekræftet", r"bekreftet", r"aktivert", r"vahvistettu", r"potwierdzon[aey]",
    r"zweryfikowan[aey]", r"potvrzen[aoý]", r"ověřen[aoý]", r"подтвержд[её]н", r"подтверждена",
    r"активирован", r"підтверджен", r"doğrulandı", r"onaylandı",
    # "changed", "updated", "reset" (a notice that it was done) in more languages
    r"changé(?:e|s|es)?", r"mis à jour", r"réinitialisée?", r"cambiad[oa]s?",
    r"actualizad[oa]s?", r"modificad[oa]s?", r"restablecid[oa]s?", r"atualizad[oa]s?",
    r"redefinid[oa]s?", r"mudad[oa]s?", r"cambiat[oa]", r"aggiornat[oa]", r"reimpostat[oa]",
    r"aktualisiert", r"zurückgesetzt", r"veranderd", r"bijgewerkt", r"gereset",
    r"opnieuw ingesteld", r"ändrats", r"ändrat", r"uppdaterats", r"återställts", r"ændret",
    r"opdateret", r"nulstillet", r"endret", r"oppdatert", r"tilbakestilt", r"vaihdettu",
    r"muutettu", r"päivitetty", r"nollattu", r"zmienion[aeoy]", r"zaktualizowan[aeoy]",
    r"zresetowan[aeoy]", r"změněn[oa]?", r"aktualizován[oa]?", r"obnoven[oa]?", r"изменён",
    r"изменен[оа]?", r"обновлён", r"обновлен[оа]?", r"сброшен[оа]?", r"змінено", r"змінений",
    r"оновлено", r"скинуто", r"değiştirildi", r"güncellendi", r"sıfırlandı", r"telah diubah",
    r"diperbarui", r"đã được thay đổi", r"đã thay đổi", r"đã cập nhật", r"được đặt lại",
    # thanks for an action already done
    r"thanks? (?:you )?for (?:confirming|verifying|activating)", r"danke für die bestätigung",
    r"danke für (?:die |ihre )?(?:bestätigung|verifizierung|aktivierung)",
    r"merci d'avoir (?:confirmé|vérifié)", r"gracias por (?:confirmar|verificar)",
    r"grazie per (?:aver confermato|la conferma)", r"obrigad[oa] por (?:confirmar|verificar)",
    r"bedankt voor het bevestigen",
)  # fmt: skip
DONE_ANY: tuple[str, ...] = (
    r"確認済み", r"確認されました", r"已验证", r"已驗證", r"已确认", r"已確認",
    r"인증되었습니다", r"확인되었습니다", r"تم التأكيد", r"تم التحقق", r"אומת", r"ยืนยันแล้ว",
    r"已(?:经|經)?(?:更改|修改|变更|變更|更新|重置|重設|验证|驗證|确认|確認)",
    r"変更されました", r"更新されました", r"リセットされました", r"已更改", r"已修改",
    r"已更新", r"已重置", r"已變更", r"已重設", r"변경되었습니다", r"업데이트되었습니다",
    r"재설정되었습니다", r"تم تغيير", r"تم تحديث", r"تمت إعادة تعيين", r"שונתה", r"עודכנה",
    r"אופסה", r"बदल दिया गया", r"बदला गया", r"अपडेट किया गया", r"เปลี่ยนแล้ว", r"ถูกเปลี่ยน",
    r"อัปเดตแล้ว",
)  # fmt: skip

CLICK_WORDS: tuple[str, ...] = (
    r"click", r"tap", r"press", r"follow (?:this|the) link", r"the (?:link|button) below",
    r"this link", r"copy and paste", r"paste (?:this|the)", r"klick", r"tippe", r"link unten",
    r"folgenden link", r"klik", r"kliknij", r"klikn", r"klikk", r"klicka", r"napsauta",
    r"cliqu", r"haz clic", r"haga clic", r"pulsa", r"clicca", r"clique", r"toque", r"нажмите",
    r"перейдите", r"натисніть", r"перейдіть", r"tıkla", r"kattint", r"κάντε κλικ", r"ketuk",
    r"nhấp", r"nhấn", r"bấm", r"lien ci-dessous", r"enlace", r"link below", r"link", r"lenke",
    r"linkki", r"odkaz", r"ссылк", r"посилан", r"bağlantı",
    # "continue": a button's word that says little alone
    r"continue", r"weiter", r"fortfahren", r"continuer", r"continuar", r"continua", r"doorgaan",
    r"ga verder", r"fortsätt", r"fortsæt", r"fortsett", r"jatka", r"kontynuuj", r"pokračovat",
    r"продолжить", r"продовжити", r"devam et", r"lanjutkan", r"tiếp tục",
)  # fmt: skip
CLICK_ANY: tuple[str, ...] = (
    r"クリック", r"タップ", r"リンク", r"点击", r"點擊", r"链接", r"連結", r"鏈接", r"클릭",
    r"링크", r"누르", r"انقر", r"اضغط", r"الرابط", r"לחץ", r"הקישור", r"क्लिक", r"लिंक",
    r"คลิก", r"ลิงก์", r"続行", r"続ける", r"继续", r"繼續", r"계속", r"متابعة", r"المتابعة",
    r"המשך", r"जारी रखें", r"ดำเนินการต่อ",
)  # fmt: skip

SECRET_WORDS: tuple[str, ...] = (
    r"password", r"passwort", r"kennwort", r"wachtwoord", r"lösenord", r"adgangskode",
    r"passord", r"salasana", r"mot de passe", r"contraseña", r"senha", r"hasło", r"hasła",
    r"heslo", r"hesl", r"пароль", r"пароля", r"parol", r"палавра", r"palavra-passe", r"gesl",
    r"lozink", r"slaptažod", r"парол", r"şifrə", r"şifre", r"jelszó", r"κωδικ", r"kata sandi",
    r"mật khẩu", r"e-?mail address", r"e-?mail-adresse", r"adresse e-?mail",
    r"adresse électronique", r"dirección de correo", r"correo electrónico", r"indirizzo email",
    r"endereço de e-?mail", r"e-?mailadres", r"e-?postadress", r"e-?mailadresse", r"sähköposti",
    r"adres e-?mail", r"e-?mailov", r"адрес электронной почты", r"электронн", r"електронн",
    r"e-?posta", r"posta elettronica", r"account", r"konto", r"compte", r"cuenta", r"conta",
    r"tili", r"účet", r"аккаунт", r"учетн", r"обліков", r"hesab", r"fiók", r"akun",
    r"tài khoản", r"security", r"sicherheit", r"sécurité", r"seguridad", r"sicurezza",
    r"segurança", r"registr", r"sign up", r"signup", r"inscri", r"regist", r"member",
    r"mitglied",
)  # fmt: skip
SECRET_ANY: tuple[str, ...] = (
    r"パスワード", r"メールアドレス", r"アカウント", r"密码", r"密碼", r"邮箱", r"郵箱",
    r"電子郵件", r"账户", r"帳戶", r"账号", r"帳號", r"비밀번호", r"이메일", r"계정",
    r"كلمة المرور", r"كلمة مرور", r"كلمة السر", r"البريد الإلكتروني", r"حساب", r"סיסמ",
    r"דוא\"ל", r"חשבון", r"पासवर्ड", r"ईमेल", r"खात", r"รหัสผ่าน", r"อีเมล", r"บัญชี", r"注册",
    r"註冊", r"登録", r"가입",
)  # fmt: skip

NOT_ACTION_WORDS: tuple[str, ...] = (
    # unsubscribing and preferences
    r"unsubscri", r"opt[ -]?out", r"preferences",
    r"manage (?:your )?(?:email|notification|subscription)", r"notification settings",
    r"email settings", r"abbestell", r"abmelden von", r"abmelden", r"newsletter abbestellen",
    r"désabonn", r"désinscri", r"se désinscrire", r"darse de baja", r"darte de baja",
    r"cancelar suscripción", r"cancella(?:re)? (?:l'|la )?iscrizione", r"disiscriv",
    r"annulla iscrizione", r"cancelar inscrição", r"descadastr", r"afmeld", r"uitschrijv",
    r"avregistr", r"avsluta prenumeration", r"avmeld", r"peruuta tilaus", r"wypisz",
    r"rezygnuj", r"odhlásit", r"odhlas", r"отписат", r"відписат", r"abonelikten çık",
    r"leiratkoz", r"berhenti berlangganan", r"hủy đăng ký",
    # privacy, terms, help, contact
    r"privacy", r"datenschutz", r"confidentialité", r"privacidad", r"privacidade",
    r"riservatezza", r"personvern", r"integritet", r"tietosuoja", r"prywatnoś",
    r"ochrana osobních", r"конфиденциальн", r"terms", r"conditions", r"agb",
    r"nutzungsbedingungen", r"impressum", r"imprint", r"mentions légales", r"términos",
    r"termini", r"termos", r"voorwaarden", r"villkor", r"vilkår", r"ehdot", r"regulamin",
    r"help", r"hilfe", r"aide", r"ayuda", r"aiuto", r"ajuda", r"hjälp", r"hjælp", r"hjelp",
    r"ohje", r"pomoc", r"nápověd", r"помощь", r"допомог", r"yardım", r"bantuan", r"trợ giúp",
    r"support", r"contact", r"kontakt", r"contatt", r"contacto", r"contato", r"faq",
    r"customer service", r"kundenservice", r"service client", r"поддержк", r"підтримк",
    r"destek",
    # other places a mail links to
    r"view (?:it |this )?(?:email |message )?(?:in|on) (?:your |a |the )?(?:browser|web)",
    r"web ?version", r"online[ -]version", r"im browser", r"dans (?:votre|le) navigateur",
    r"en (?:el|tu) navegador", r"nel browser", r"no navegador", r"in je browser",
    r"i (?:din )?webbläsare", r"w przeglądarce", r"в браузере", r"download (?:the|our) app",
    r"app store", r"google play", r"get it on", r"follow us", r"folge uns", r"suivez-nous",
    r"síguenos", r"seguici", r"siga-nos", r"volg ons", r"facebook", r"twitter", r"instagram",
    r"linkedin", r"youtube", r"tiktok", r"pinterest",
    # a sign-in that was not wanted
    r"not you", r"wasn'?t me", r"was not me", r"not me", r"didn'?t request",
    r"report (?:this|it)", r"secure your account", r"delete (?:the |your |my )?account",
    r"deny", r"decline", r"block", r"reject", r"cancel", r"das war ich nicht", r"nicht ich",
    r"ce n'était pas moi", r"no fui yo", r"não fui eu", r"non ero io", r"это был не я",
    r"это не я",
    # getting the app
    r"app herunterladen", r"lade die app", r"télécharge[rz]? l'app", r"descarga(?:r)? la app",
    r"descarga(?:r)? la aplicación", r"scarica l'app", r"baix(?:e|ar) o app",
    r"download de app", r"ladda ner appen", r"hent appen", r"download appen",
    r"pobierz aplikację", r"stáhněte si aplikaci", r"скачайте приложение",
    r"скачать приложение", r"завантажте застосунок", r"uygulamayı indir", r"unduh aplikasi",
    r"tải ứng dụng",
)  # fmt: skip
NOT_ACTION_ANY: tuple[str, ...] = (
    r"配信停止", r"購読解除", r"退订", r"取消订阅", r"取消訂閱", r"수신\s?거부", r"구독\s?취소",
    r"إلغاء الاشتراك", r"הסרה מרשימת", r"להסרה", r"सदस्यता समाप्त", r"ยกเลิกการรับ",
    r"ยกเลิกการสมัคร", r"プライバシー", r"隐私", r"隱私", r"개인정보", r"الخصوصية", r"פרטיות",
    r"गोपनीयता", r"ความเป็นส่วนตัว", r"ヘルプ", r"お問い合わせ", r"帮助", r"幫助", r"客服",
    r"联系我们", r"聯絡我們", r"고객센터", r"도움말", r"المساعدة", r"اتصل بنا", r"עזרה",
    r"צור קשר", r"सहायता", r"ช่วยเหลือ", r"ติดต่อเรา", r"利用規約", r"服务条款", r"條款",
    r"이용약관", r"الشروط", r"תנאי", r"शर्तें", r"ข้อกำหนด", r"ブラウザで", r"浏览器中",
    r"瀏覽器", r"브라우저", r"المتصفح", r"בדפדפן", r"私ではない", r"不是我", r"본인이 아닙",
    r"لم أكن أنا", r"זה לא אני",
)  # fmt: skip

COMMERCE_WORDS: tuple[str, ...] = (
    r"order", r"receipt", r"invoice", r"shipped", r"shipping", r"shipment", r"delivery",
    r"track (?:your )?package", r"tracking", r"newsletter", r"sale", r"% off", r"discount",
    r"shop now", r"buy now", r"cart", r"subscription", r"payment", r"billing", r"purchase",
    r"coupon", r"deal", r"webinar", r"bestellung", r"rechnung", r"quittung", r"versand",
    r"lieferung", r"sendungsverfolgung", r"angebot", r"rabatt", r"commande", r"facture",
    r"reçu", r"livraison", r"expédi", r"promo", r"pedido", r"factura", r"recibo", r"envío",
    r"entrega", r"oferta", r"ordine", r"fattura", r"ricevuta", r"spedizion", r"offerta",
    r"fatura", r"encomenda", r"bestelling", r"factuur", r"verzending", r"levering",
    r"beställning", r"kvitto", r"faktura", r"leverans", r"ordre", r"tilaus", r"lasku",
    r"zamówieni", r"przesyłk", r"objednávk", r"заказ", r"счёт", r"счет", r"доставк",
    r"замовлення", r"sipariş", r"fatura", r"kargo", r"pesanan", r"đơn hàng",
)  # fmt: skip
COMMERCE_ANY: tuple[str, ...] = (
    r"注文", r"領収書", r"請求書", r"配送", r"発送", r"订单", r"訂單", r"发票", r"發票",
    r"物流", r"快递", r"주문", r"영수증", r"배송", r"الطلب", r"فاتورة", r"الشحن", r"הזמנה",
    r"קבלה", r"משלוח", r"ऑर्डर", r"डिलीवरी", r"คำสั่งซื้อ", r"ใบเสร็จ", r"จัดส่ง",
)  # fmt: skip

ROLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # Order matters where words overlap: the first role that matches at a place wins.
    "not_action": (NOT_ACTION_WORDS, NOT_ACTION_ANY),
    "done": (DONE_WORDS, DONE_ANY),
    "reset": (RESET_WORDS, RESET_ANY),
    "approve": (APPROVE_WORDS, APPROVE_ANY),
    "sign_in": (SIGN_IN_WORDS, SIGN_IN_ANY),
    "confirm": (CONFIRM_WORDS, CONFIRM_ANY),
    "secret": (SECRET_WORDS, SECRET_ANY),
    "commerce": (COMMERCE_WORDS, COMMERCE_ANY),
    "click": (CLICK_WORDS, CLICK_ANY),
}


_SPECIAL = frozenset("\\[](){}?*+|.^$")
TRIE_DEPTH = 3


def _literal_prefix(pattern: str) -> str:
    """The plain characters a pattern starts with (a quantified last one is left out)."""
    out: list[str] = []
    for c in pattern:
        if c in _SPECIAL:
            if c in "?*+{" and out:
                out.pop()  # "s?" makes the "s" optional
            break
        out.append(c)
    return "".join(out)


def _trie(entries: list[tuple[str, str]], depth: int) -> str:
    """``entries`` (literal prefix, rest of the pattern) as one regex factored on shared
    leading characters, ``depth`` levels deep, in their order where they share a start."""
    order: list[str] = []
    children: dict[str, list[tuple[str, str]]] = {}
    raw: dict[str, str] = {}
    for prefix, rest in entries:
        if depth == 0 or not prefix:
            key = f"raw{len(raw)}"
            raw[key] = re.escape(prefix) + rest
            order.append(key)
            continue
        head = prefix[0]
        if head not in children:
            children[head] = []
            order.append(head)
        children[head].append((prefix[1:], rest))
    out = []
    for key in order:
        if key in raw:
            out.append(raw[key])
        else:
            out.append(f"{re.escape(key)}(?:{_trie(children[key], depth - 1)})")
    return "|".join(out)


def _split(word: str) -> tuple[str, str]:
    prefix = _literal_prefix(word)
    return prefix, word[len(prefix) :]


def role_pattern() -> tuple[re.Pattern[str], dict[str, tuple[re.Pattern[str], re.Pattern[str]]]]:
    """One pattern finding every listed word, and per role the patterns (spaced, glued)
    that tell which role a found word plays.

    Spaced-script words must start a word (no letter before them); the others
    match anywhere. Within a role longer alternatives come first, so "log ind"
    is read before "log"; between roles the first listed wins (``ROLES``'
    order). The pattern is factored on the words' first letters (a trie), so
    that the engine tries a few alternatives at each place, not hundreds.
    """
    spaced: list[tuple[str, str]] = []
    glued: list[tuple[str, str]] = []
    by_role: dict[str, tuple[re.Pattern[str], re.Pattern[str]]] = {}
    for role, (words, anywhere) in ROLES.items():
        spaced += [_split(w) for w in sorted(words, key=len, reverse=True)]
        glued += [_split(w) for w in sorted(anywhere, key=len, reverse=True)]
        by_role[role] = (re.compile("|".join(words)), re.compile("|".join(anywhere)))
    # Each part is tried only where it can start: at the start of a word for spaced
    # scripts, and, for both, at a character some word of the part begins with.
    spaced_pattern = f"(?<![^\\W\\d_]){_may_start(spaced)}(?:{_trie(spaced, TRIE_DEPTH)})"
    glued_pattern = f"{_may_start(glued)}(?:{_trie(glued, TRIE_DEPTH)})"
    return re.compile(f"{spaced_pattern}|{glued_pattern}"), by_role


def _may_start(entries: list[tuple[str, str]]) -> str:
    """A look-ahead for the first letters of ``entries`` (none if one has no literal start)."""
    heads = {prefix[0] for prefix, _ in entries if prefix}
    if any(not prefix for prefix, _ in entries):
        return ""
    return "(?=[" + "".join(sorted(re.escape(h) for h in heads)) + "])"
